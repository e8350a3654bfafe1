"""What the SQL stores share: the database URL, the engine, column types, and statements every
store uses alike (newest-first pages, deletes in chunks).

The same tables serve SQLite (the embedded default), PostgreSQL (psycopg 3) and MariaDB or
MySQL (PyMySQL); what differs between them is said here and nowhere else.
"""

from __future__ import annotations

from control.paging import Cursor

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# Ids: 64-bit everywhere but SQLite, whose INTEGER PRIMARY KEY is the rowid (64-bit too).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Long text (tracebacks, output lines): MySQL's TEXT stops at 64 KiB.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

_DRIVERS = {
    # Plain postgresql:// would pick psycopg2; the pinned driver is psycopg 3.
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
CHUNK = 5_000  # rows deleted per transaction


def database_url(value: str, *, base: Path) -> str:
    """A value with a scheme is a SQLAlchemy URL; anything else is the path of a SQLite file."""
    if "://" not in value:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base / path
        return f"sqlite:///{path}"
    url = sa.engine.make_url(value)
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    if url.drivername == "mysql+pymysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})  # every character, not three bytes of them
    return url.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and the API."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


_SQLITE_BUSY = 5.0  # seconds a statement waits for another connection's lock


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the file in WAL mode (it stays so; later openers find it done). SQLite refuses the
    switch at once, without its busy wait, while another connection holds a lock on the file:
    processes opening a new file at the same moment retry here for as long as that wait."""
    deadline = time.monotonic() + _SQLITE_BUSY
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)  # nothing to wait on: SQLite's own busy wait polls too


def create_engine(url: str) -> sa.Engine:
    """An engine with the settings the stores rely on (WAL and a busy timeout on SQLite)."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            # WAL lets the API and Rocketry read while the writer thread commits.
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def matching(
    table: sa.Table, *, one_of: dict[str, tuple], since: float | None, until: float | None
) -> list[sa.ColumnElement]:
    """The conditions of a page's filters: each column with values is one of them (no values,
    no condition), and ``created`` within ``since`` and ``until`` when given."""
    where = [table.c[column].in_(values) for column, values in one_of.items() if values]
    if since is not None:
        where.append(table.c.created >= since)
    if until is not None:
        where.append(table.c.created <= until)
    return where


def newest_first(
    conn: sa.Connection,
    table: sa.Table,
    where: list[sa.ColumnElement],
    *,
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[sa.Row], Cursor | None]:
    """Up to ``limit`` rows after ``cursor``, and the cursor of the next page (None at the end)."""
    created, id_ = table.c.created, table.c.id
    stmt = sa.select(table).where(*where)
    if cursor is not None:
        # The first condition alone can use the (created, id) indexes.
        stmt = stmt.where(created <= cursor.created, sa.or_(created < cursor.created, id_ < cursor.id))
    rows = conn.execute(stmt.order_by(created.desc(), id_.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return page, (Cursor(created=page[-1].created, id=page[-1].id) if more else None)


def delete_in_chunks(engine: sa.Engine, table: sa.Table, where: sa.ColumnElement) -> int:
    """Delete the rows matching ``where``, ``CHUNK`` per transaction (so that a large prune
    never holds the database's write lock for long); returns how many went. The ids are
    read first: MySQL cannot delete from a table it selects from in the same statement."""
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(sa.select(table.c.id).where(where).limit(CHUNK)).scalars().all()
            if ids:
                conn.execute(sa.delete(table).where(table.c.id.in_(ids)))
        removed += len(ids)
        if len(ids) < CHUNK:
            return removed


def insert_sql(
    dialect: sa.Dialect, table: str, fields: tuple[str, ...], *, skip_duplicates: bool = False
) -> str:
    """A plain INSERT for the driver itself (``exec_driver_sql``), in its parameter style;
    with ``skip_duplicates``, a row a unique index already holds is dropped, not an error
    (MySQL has no such index here: see ``tables.py``)."""
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{}", "named": ":{}"}
    style = marker.get(dialect.paramstyle)
    if style is None or "{}" in style:
        raise ValueError(f"unsupported parameter style {dialect.paramstyle!r}")
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join([style] * len(fields))})"
    if skip_duplicates and dialect.name in ("postgresql", "sqlite"):
        sql += " ON CONFLICT DO NOTHING"
    return sql


def is_outage(exc: BaseException) -> bool:
    """Whether the database is away (retry later), rather than refusing what a statement holds."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa.exc.OperationalError | sa.exc.DisconnectionError | sa.exc.TimeoutError)


def short(exc: BaseException) -> str:
    """The first line of an error, bounded: what goes into logs and ``last_error``."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# Where replicas hear each other, and the names of their advisory locks: per schema, so that
# deployments in different schemas of one database never mix (in SQL: 'rocketry_control:' || schema).
CHANNEL_SQL = "'rocketry_control:' || current_schema()"


def lock_key_sql(purpose: str) -> str:
    """The advisory lock key of ``purpose`` (a word) in this schema, as SQL."""
    return f"hashtext('rocketry_control:{purpose}:' || current_schema())"


def notify_replicas(conn: sa.Connection, kind: str, subject: str = "") -> None:
    """Tell the other replicas (PostgreSQL ``NOTIFY``, sent when ``conn``'s transaction
    commits, so a notice never runs ahead of its rows); nothing on other databases."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SELECT pg_notify({CHANNEL_SQL}, :payload)"), {"payload": f"{kind}:{subject}"})
