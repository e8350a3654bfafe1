"""The schema, made and upgraded by Alembic revisions (``versions/``) under a lock the database
holds, so that processes opening one database at once take turns and the later ones find it at
the newest revision and do nothing.

``tables.py`` stays the description the code uses; each revision is a snapshot of one step
towards it, and a test checks that the revisions end where ``tables.py`` is. The lock, per
backend:

- PostgreSQL: ``pg_advisory_lock`` on a key of this schema (``lock_key_sql("schema")``), held
  by the connection that migrates; the wait is bounded by ``lock_timeout``.
- MySQL and MariaDB: ``GET_LOCK`` on a name of this database, with its timeout.
- SQLite: ``BEGIN IMMEDIATE`` (the file's write lock), the wait bounded by the busy timeout;
  SQLite's DDL is transactional, so the revisions commit with it or not at all.
"""

from __future__ import annotations

from control.stores.base import StoreOpenError
from control.stores.sql.engine import lock_key_sql

import contextlib
import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

__all__ = ["alembic_config", "current_revision", "head", "migrate", "schema_lock", "stamp_of_unversioned"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# Databases made before migrations (by ``metadata.create_all``): the revision whose schema
# each had, told apart by what the later one added.
FIRST, REPLICAS, WORKERS, RUN_INDEX = "0001", "0002", "0003", "0004"
VERSION_TABLE = "alembic_version"  # Alembic's default
_PG_LOCK_UNAVAILABLE = "55P03"  # lock_timeout expired


# Alembic's ``op`` and ``context`` are module-level proxies to the migration running now: two
# threads of one process migrating at once (two databases, say) would mix them.
_ALEMBIC = threading.Lock()


class LockTimeoutError(StoreOpenError):
    """Another process held the schema lock for longer than we would wait."""


def alembic_config(conn: sa.Connection | None = None) -> Config:
    """Alembic's configuration for ``alembic.command`` on ``conn`` (no alembic.ini: the
    scripts are this package, and env.py runs them on ``conn``)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = conn
    return config


def head() -> str:
    """The newest revision."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migrate(engine: sa.Engine, *, timeout: float) -> None:
    """Bring the schema to the newest revision, under the schema lock (waiting at most
    ``timeout`` seconds for it; ``LockTimeoutError`` beyond). A database made before
    migrations is stamped at the revision it has first."""
    with schema_lock(engine, timeout=timeout) as conn, _ALEMBIC:
        config = alembic_config(conn)
        current = current_revision(conn)
        if current is None:
            adopted = stamp_of_unversioned(conn)
            if adopted is not None:
                logger.info("schema made before migrations, at revision %s: stamped", adopted)
                command.stamp(config, adopted)
                current = adopted
        script = ScriptDirectory.from_config(config)
        newest = script.get_current_head()
        if current is not None and current not in {r.revision for r in script.walk_revisions()}:
            raise StoreOpenError(
                f"the schema is at revision {current}, which this version does not know (its newest "
                f"is {newest}): a newer version made it; run that one"
            )
        if current != newest:
            logger.info("schema at revision %s: upgrading to %s", current or "(empty)", newest)
            command.upgrade(config, "head")
        conn.commit()


def current_revision(conn: sa.Connection) -> str | None:
    """The revision the schema is at (None: no version), read from Alembic's version table
    directly: asking Alembic logs two lines at every start."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:  # the revisions never branch
        raise StoreOpenError(f"the schema has several versions ({', '.join(sorted(versions))})")
    return versions[0] if versions else None


def stamp_of_unversioned(conn: sa.Connection) -> str | None:
    """For a database without a version: None if it has no tables of ours, else the revision
    whose schema it has (``create_all`` of that time made every table at once)."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("task_log"):
        return None
    if any(index["name"] == "ix_task_log_run" for index in inspector.get_indexes("task_log")):
        return RUN_INDEX
    if inspector.has_table("remote_runs"):
        return WORKERS
    columns = {column["name"] for column in inspector.get_columns("task_log")}
    return REPLICAS if "epoch" in columns else FIRST


@contextlib.contextmanager
def schema_lock(engine: sa.Engine, *, timeout: float) -> Iterator[sa.Connection]:
    """A connection holding the schema lock of ``engine``'s database (or schema) until the
    block ends; what the block did not commit is undone. On an error the connection is
    discarded, which releases the lock too."""
    take = {"postgresql": _lock_postgresql, "mysql": _lock_mysql, "sqlite": _lock_sqlite}.get(
        engine.dialect.name
    )
    if take is None:
        raise StoreOpenError(f"no schema lock for the {engine.dialect.name} dialect")
    conn = engine.connect()
    try:
        waited = time.monotonic()
        release = take(conn, timeout)
        logger.debug("schema lock taken after %.3f s", time.monotonic() - waited)
        yield conn
        release()
    except BaseException:
        conn.invalidate()
        raise
    finally:
        conn.close()


def _timed_out(timeout: float) -> LockTimeoutError:
    return LockTimeoutError(
        f"gave up after {timeout:g} s waiting for the schema lock: another process is creating "
        "or upgrading the tables (or holds the lock); try again, or raise SCHEDULER_SCHEMA_LOCK_TIMEOUT"
    )


def _lock_postgresql(conn: sa.Connection, timeout: float):
    # lock_timeout bounds the wait for the advisory lock, and for the table locks the DDL takes.
    conn.execute(
        sa.text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{math.ceil(timeout * 1000)}"}
    )
    try:
        conn.execute(sa.text(f"SELECT pg_advisory_lock({lock_key_sql('schema')})"))
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == _PG_LOCK_UNAVAILABLE:
            raise _timed_out(timeout) from exc
        raise
    conn.commit()  # the lock is the session's; the migration runs in a transaction of its own

    def release():
        conn.rollback()
        conn.execute(sa.text(f"SELECT pg_advisory_unlock({lock_key_sql('schema')})"))
        conn.execute(sa.text("RESET lock_timeout"))
        conn.commit()

    return release


def _mysql_lock_name(conn: sa.Connection) -> str:
    database = conn.execute(sa.select(sa.func.database())).scalar() or ""
    name = f"rocketry_control:schema:{database}"
    if len(name) > 64:  # the longest name GET_LOCK takes
        name = f"rocketry_control:schema:{hashlib.sha1(database.encode()).hexdigest()}"
    return name


def _lock_mysql(conn: sa.Connection, timeout: float):
    name = _mysql_lock_name(conn)
    taken = conn.execute(sa.select(sa.func.get_lock(name, math.ceil(timeout)))).scalar()
    if taken != 1:  # 0: timed out; NULL: an error (killed)
        raise _timed_out(timeout)
    conn.commit()

    def release():
        conn.rollback()
        conn.execute(sa.select(sa.func.release_lock(name)))
        conn.commit()

    return release


def _lock_sqlite(conn: sa.Connection, timeout: float):
    # Python's sqlite3 would not begin a transaction before DDL, and would begin a deferred one
    # otherwise: the driver is told to leave transactions alone while this one is held.
    raw = conn.connection.driver_connection
    level = raw.isolation_level
    busy = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    raw.isolation_level = None
    raw.execute(f"PRAGMA busy_timeout = {math.ceil(timeout * 1000)}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except sa.exc.OperationalError as exc:
        if "locked" in str(exc.orig):
            raise _timed_out(timeout) from exc
        raise

    def release():
        conn.rollback()  # if the block did not commit; the write lock goes with the transaction
        raw.isolation_level = level
        raw.execute(f"PRAGMA busy_timeout = {int(busy)}")

    return release
