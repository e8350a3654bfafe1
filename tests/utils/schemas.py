"""Databases at a revision of the schema, holding rows as an older version wrote them, for the
tests of migrations (store contract and replicas started at once)."""

from control.stores.sql.migrations import alembic_config

import contextlib

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext


@contextlib.contextmanager
def engine_on(url: str):
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    with engine_on(url) as engine, engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def made_at(url: str, revision: str, *, versioned: bool = True) -> None:
    """The schema of ``revision``, as its migrations make it; without ``versioned``, as the
    code before migrations left it (no version table)."""
    with engine_on(url) as engine, engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
        if not versioned:
            conn.execute(sa.text("DROP TABLE alembic_version"))


OLD_LOG = [
    {"task_name": "a", "action": "run", "created": 1.0, "run_id": "r1", "start": 1.0},
    {"task_name": "a", "action": "success", "created": 2.0, "run_id": "r1", "start": 1.0, "end": 2.0},
    {"task_name": "b", "action": "run", "created": 3.0, "run_id": "r2", "message": "long " * 1000},
]


def write_old_rows(url: str) -> None:
    """Rows as the version before replicas wrote them (no epoch)."""
    columns = ("task_name", "action", "created", "run_id", "start", "end", "message")
    with engine_on(url) as engine, engine.begin() as conn:
        log = sa.table("task_log", *(sa.column(name) for name in columns))
        conn.execute(log.insert(), [{name: row.get(name) for name in columns} for row in OLD_LOG])
        conn.execute(
            sa.text(
                "INSERT INTO task_definitions (name, origin, fields, updated) "
                """VALUES ('a', 'runtime', '{"start_cond": "every 1 hour"}', 5.0)"""
            )
        )


def assert_old_rows_kept(url: str) -> None:
    """The rows of ``write_old_rows`` are there as they were, first in the log (a running
    service adds its own after them), with no epoch."""
    with engine_on(url) as engine, engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT task_name, action, created, run_id, epoch, message FROM task_log ORDER BY id")
        ).all()[: len(OLD_LOG)]
        fields = conn.execute(sa.text("SELECT fields FROM task_definitions WHERE name = 'a'")).scalar()
    assert [(r.task_name, r.action, r.created, r.run_id, r.epoch) for r in rows] == [
        (row["task_name"], row["action"], row["created"], row["run_id"], None) for row in OLD_LOG
    ]
    assert rows[-1].message == OLD_LOG[-1]["message"]
    assert "every 1 hour" in str(fields)
