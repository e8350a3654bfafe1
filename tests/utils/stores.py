"""Helpers for the store contract suites: log records as Rocketry writes them, stores opened on
a backend, and what each backend does differently (what it refuses, how a table is locked)."""

from control.stores.sql import Retention, open_stores

import contextlib
import sqlite3

import sqlalchemy as sa


def record(task, action, created, **extra):
    """What redbird's RepoHandler writes: vars() of a logging.LogRecord."""
    return {
        "task_name": task,
        "action": action,
        "created": created,
        "msg": f"{task} {action}",
        "levelname": "INFO",
        "name": "rocketry.task",
        **extra,
    }


@contextlib.contextmanager
def opened(url: str, *, stuck_after: float = 5.0, **retention):
    """The stores on ``url`` (closed afterwards), with a retention policy if given."""
    stores = open_stores(
        url, retention=Retention(**retention) if retention else None, stuck_after=stuck_after
    )
    try:
        yield stores
    finally:
        stores.close()


def backend(url: str) -> str:
    return sa.engine.make_url(url).get_backend_name()


def refused_record(url: str) -> dict:
    """A record the backend refuses as it is: SQLite and MariaDB take no NaN (SQLite makes
    it NULL in a NOT NULL column, PyMySQL writes it as a bare word); PostgreSQL's text
    cannot hold NUL."""
    if backend(url) == "postgresql":
        return record("a", "success", 3.0, msg="nul \x00 inside")
    return record("a", "success", float("nan"), msg="not a number")


@contextlib.contextmanager
def table_locked(url: str, table: str):
    """Another connection holds ``table``, so a write to it waits (it is not refused)."""
    if backend(url) == "sqlite":
        other = sqlite3.connect(sa.engine.make_url(url).database, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as other:
            if backend(url) == "postgresql":
                other.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
                try:
                    yield
                finally:
                    other.rollback()
            else:
                other.execute(sa.text(f"LOCK TABLES {table} WRITE"))
                try:
                    yield
                finally:
                    other.execute(sa.text("UNLOCK TABLES"))
    finally:
        engine.dispose()
