"""The schema through migrations, over every backend: the revisions end where ``tables.py`` is and
make what ``create_all`` made; an empty database, one of an older revision and one made before
migrations all come to the newest revision with their rows; processes opening one database at
once take turns, and one that waits too long for the lock says so."""

from control.stores.base import StoreOpenError
from control.stores.sql import open_stores
from control.stores.sql.engine import database_url
from control.stores.sql.migrations import alembic_config, head, schema_lock
from control.stores.sql.tables import metadata

import contextlib
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.utils.fixtures import POSTGRES_URL, mariadb_database, postgres_schema
from tests.utils.schemas import OLD_LOG, assert_old_rows_kept, engine_on, made_at, revision_of, write_old_rows
from tests.utils.service_process import REPO
from tests.utils.stores import backend, opened

OPENERS = 4  # processes opening one database at once


@contextlib.contextmanager
def another_database(url: str, tmp_path):
    """A second, empty database of the backend of ``url``."""
    kind = backend(url)
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'reference.db'}"
    elif kind == "postgresql":
        with postgres_schema(POSTGRES_URL) as other:
            yield other
    else:
        with mariadb_database() as other:
            yield database_url(other, base=tmp_path)


def differences(url: str) -> list:
    """What Alembic's autogenerate would change to make the database match ``tables.py``.
    Autogenerate does not know ``ddl_if``: an index made only on other dialects is no
    difference here."""

    def include(obj, name, type_, reflected, compare_to):
        ddl_if = getattr(obj, "_ddl_if", None)
        return not (type_ == "index" and not reflected and ddl_if and dialect not in ddl_if.dialect)

    with engine_on(url) as engine, engine.connect() as conn:
        dialect = conn.dialect.name
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True, "include_object": include}
        )
        return compare_metadata(context, metadata)


def shape(url: str) -> dict:
    """Every table's columns, keys and indexes (partial ones with their condition), as the
    database reports them."""
    with engine_on(url) as engine, engine.connect() as conn:
        inspector = sa.inspect(conn)
        tables = {}
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            tables[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("autoincrement"))
                    for c in inspector.get_columns(table)
                ],
                "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
                "unique": sorted(u["column_names"] for u in inspector.get_unique_constraints(table)),
                "indexes": sorted(
                    (
                        index["name"],
                        index["column_names"],
                        bool(index["unique"]),
                        {
                            key: re.sub(r"\s+", " ", str(value))
                            for key, value in index.get("dialect_options", {}).items()
                        },
                    )
                    for index in inspector.get_indexes(table)
                ),
            }
        return tables


def test_the_revisions_end_where_tables_py_is(store_url):
    with opened(store_url):
        pass
    assert revision_of(store_url) == head()
    assert differences(store_url) == []


def test_the_revisions_make_what_create_all_made(store_url, tmp_path):
    """Partial unique indexes included (PostgreSQL and SQLite), which Alembic does not compare."""
    with opened(store_url):
        pass
    with another_database(store_url, tmp_path) as reference:
        with engine_on(reference) as engine:
            metadata.create_all(engine)
        migrated = shape(store_url)
        assert migrated == shape(reference)
    partial = {"ux_task_log_run_started", "ux_task_log_run_ended"}
    indexes = {index[0] for index in migrated["task_log"]["indexes"]}
    assert partial <= indexes if backend(store_url) in ("postgresql", "sqlite") else not partial & indexes


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "made before migrations"])
def test_a_database_of_the_first_revision_is_upgraded_in_place_with_its_rows(store_url, versioned):
    made_at(store_url, "0001", versioned=versioned)
    write_old_rows(store_url)
    with opened(store_url) as stores:
        assert stores.logs.filter_by(task_name="a").count() == 2
    assert revision_of(store_url) == head()
    assert_old_rows_kept(store_url)
    assert differences(store_url) == []


def test_a_database_made_by_create_all_before_migrations_is_stamped_and_kept(store_url):
    with engine_on(store_url) as engine:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO log_marks (name, value) VALUES ('kept', 1.5)"))
    with opened(store_url):
        pass
    assert revision_of(store_url) == head()
    with engine_on(store_url) as engine, engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM log_marks WHERE name = 'kept'")).scalar() == 1.5


# What open_stores does first. Not open_stores whole: on SQLite and MySQL a second process with
# the stores open is refused by design (one scheduler per database there).
OPENER = """
import logging, sys
import control
from control.stores.sql.engine import create_engine
from control.stores.sql.migrations import migrate

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
engine = create_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate(engine, timeout=60)
engine.dispose()
"""


def open_at_once(url: str) -> list[str]:
    """``OPENERS`` processes migrate the schema of ``url`` at the same moment (each told to go
    once all are ready); what each logged. Each must succeed."""
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(OPENERS)
    ]
    try:
        for opener in openers:
            assert opener.stdout.readline() == "ready\n", opener.stderr.read()
        for opener in openers:
            opener.stdin.write("go\n")
            opener.stdin.flush()
        logs = [opener.communicate(timeout=60)[1] for opener in openers]
    finally:
        for opener in openers:
            if opener.poll() is None:
                opener.kill()
                opener.wait()
    assert [opener.returncode for opener in openers] == [0] * OPENERS, logs
    return logs


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("made", ["empty", "first revision"])
def test_openers_at_once_take_turns_and_one_migrates(store_url, made):
    if made == "first revision":
        made_at(store_url, "0001", versioned=False)
        write_old_rows(store_url)
    logs = open_at_once(store_url)
    upgrades = [line for log in logs for line in log.splitlines() if "migrations: schema at revision" in line]
    assert len(upgrades) == 1, logs  # the others waited, then found the newest revision
    assert revision_of(store_url) == head()
    if made == "first revision":
        assert_old_rows_kept(store_url)


def test_an_upgrade_that_fails_leaves_the_schema_as_it_was(store_url):
    if backend(store_url) == "mysql":
        pytest.skip("MySQL commits each DDL statement on its own")
    made_at(store_url, "0001")
    write_old_rows(store_url)
    with engine_on(store_url) as engine, engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE leader_requests (id INTEGER)"))  # revision 0002 makes it last
    with pytest.raises(StoreOpenError, match="leader_requests"):
        open_stores(store_url, start_writer=False)
    assert revision_of(store_url) == "0001"
    with engine_on(store_url) as engine:
        inspector = sa.inspect(engine)
        assert "epoch" not in {column["name"] for column in inspector.get_columns("task_log")}
        assert not {"leadership", "run_claims", "shared_events"} & set(inspector.get_table_names())
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM task_log")).scalar() == len(OLD_LOG)


def test_a_schema_newer_than_this_version_is_refused_and_left_alone(store_url):
    with opened(store_url):
        pass
    with engine_on(store_url) as engine, engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(
        StoreOpenError, match="the schema is at revision f00d, which this version does not know"
    ):
        open_stores(store_url, start_writer=False)
    assert revision_of(store_url) == "f00d"


def test_an_opener_gives_up_on_a_held_lock_after_its_timeout_and_says_why(store_url):
    with opened(store_url):
        pass
    with engine_on(store_url) as engine, schema_lock(engine, timeout=5):
        with pytest.raises(StoreOpenError, match=r"gave up after 0\.5 s waiting for the schema lock"):
            open_stores(store_url, schema_lock_timeout=0.5, start_writer=False)
    open_stores(store_url, schema_lock_timeout=0.5, start_writer=False).close()  # released


def test_the_revisions_go_down_and_up_again(store_url):
    with opened(store_url):
        pass
    with engine_on(store_url) as engine, engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert revision_of(store_url) == "0001"
    with opened(store_url):
        pass
    assert differences(store_url) == []
