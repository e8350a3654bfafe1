"""SQLLogStore: task log records in SQLite or PostgreSQL (SQLAlchemy 2), written off the caller's thread."""

from __future__ import annotations

from control.logstores.base import LogEntry, LogPage, LogQuery, LogStore, OutputLine, StoreHealth
from control.paging import newest_first
from control.sqlstore import delete_in_chunks
from control.text import storable

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic.v1 import PrivateAttr
from redbird.oper import (
    Between,
    Equal,
    GreaterEqual,
    GreaterThan,
    In,
    LessEqual,
    LessThan,
    NotEqual,
    Operation,
    _Skip,
)
from redbird.utils.query import QueryMatcher

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

task_log = sa.Table(
    "task_log",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("start", sa.Double()),
    sa.Column("end", sa.Double()),
    sa.Column("runtime", sa.Double()),
    sa.Column("message", sa.Text()),
    sa.Column("exc_text", sa.Text()),
    # Pages run newest first, by (created, id), with or without a task filter; Rocketry
    # asks for the newest record of a task and action.
    sa.Index("ix_task_log_created", "created", "id"),
    sa.Index("ix_task_log_task_created", "task_name", "created", "id"),
    sa.Index("ix_task_log_task_action_created", "task_name", "action", "created"),
    sa.Index("ix_task_log_action_created", "action", "created"),
    # A run's records share its run id: which runs never got an outcome (after a crash).
    sa.Index("ix_task_log_task_run", "task_name", "run_id", "action"),
)

run_output = sa.Table(
    "run_output",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("stream", sa.String(10), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Index("ix_run_output_run", "task_name", "run_id", "seq"),
    sa.Index("ix_run_output_created", "created"),
)
_OUTPUT_FIELDS = ("task_name", "run_id", "seq", "created", "stream", "text")

# Facts about the log as a whole: how far back every run is known to have an outcome.
log_marks = sa.Table(
    "log_marks",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.Double(), nullable=False),
)
_CHECKED_UNTIL = "runs_checked_until"

_FIELDS = ("task_name", "action", "created", "run_id", "start", "end", "runtime", "message", "exc_text")
_BATCH = 500
_GROUP_COMMIT = 0.005  # seconds


def create_engine(url: str) -> sa.Engine:
    """An engine with the settings this store relies on (WAL and a busy timeout on SQLite)."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            # WAL lets the API and Rocketry read while the writer thread commits.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _condition(column: sa.ColumnElement, value: Any) -> sa.ColumnElement | None:
    """Translate one redbird query value into a SQL condition (None: no condition)."""
    if not isinstance(value, Operation):
        return column == value
    match value:
        case _Skip():
            return None
        case Between():
            return column.between(value.start, value.end)
        case In():
            return column.in_(list(value.value))
        case Equal():
            return column == value.value
        case NotEqual():
            return column != value.value
        case GreaterThan():
            return column > value.value
        case LessThan():
            return column < value.value
        case GreaterEqual():
            return column >= value.value
        case LessEqual():
            return column <= value.value
    raise ValueError(f"unsupported query operation {type(value).__name__}")


class SQLLogStore(LogStore):
    """Log store on SQLAlchemy 2.

    ``add`` only queues the record: a writer thread commits queued records in batches, so
    the event loop never waits for the database, and retries while the database is away.
    Reads made through the redbird interface (Rocketry's) also see queued records.
    """

    _engine: sa.Engine = PrivateAttr()
    _pending: deque = PrivateAttr()
    _lock: Any = PrivateAttr()
    _wake: Any = PrivateAttr()
    _urgent: Any = PrivateAttr()
    _done: Any = PrivateAttr()
    _accepted: int = PrivateAttr(0)
    _settled: int = PrivateAttr(0)
    _health: StoreHealth = PrivateAttr()
    _writer: threading.Thread | None = PrivateAttr(None)
    _restart_lock: Any = PrivateAttr(default_factory=threading.Lock)
    _stuck_after: float = PrivateAttr()
    _progress_at: float = PrivateAttr()
    _closing: bool = PrivateAttr(False)
    _retention: tuple = PrivateAttr()
    _insert_sql: str = PrivateAttr()
    _output_sql: str = PrivateAttr()
    _max_pending: int = PrivateAttr()

    def __init__(
        self,
        url: str,
        *,
        retention_days: float | None = None,
        retention_per_task: int | None = None,
        retention_interval: float = 300.0,
        max_pending: int = 100_000,
        stuck_after: float = 5.0,
        start: bool = True,
    ):
        super().__init__(model=LogEntry, id_field="id")
        self._engine = create_engine(url)
        metadata.create_all(self._engine)
        for index in task_log.indexes:  # an index added since the table was made
            index.create(self._engine, checkfirst=True)
        self._insert_sql = _insert_sql(self._engine.dialect, "task_log", _FIELDS)
        self._output_sql = _insert_sql(self._engine.dialect, "run_output", _OUTPUT_FIELDS)
        self._pending = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._done = threading.Condition(self._lock)
        self._health = StoreHealth()
        self._retention = (retention_days, retention_per_task, retention_interval)
        self._max_pending = max_pending
        self._stuck_after = stuck_after
        self._progress_at = time.monotonic()
        if start:
            self._start_writer()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    # -- writing -----------------------------------------------------------------------

    def add_output(self, line: OutputLine) -> None:
        self.insert(line)

    def insert(self, item: LogEntry | OutputLine) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self._health.lost += 1
                self._settled += 1
            if not self._pending:
                self._progress_at = time.monotonic()  # waiting starts now
            self._pending.append(item)
            self._accepted += 1
        if self._writer is None:
            self._write_pending()
        else:
            self._keep_writer_alive()
            self._wake.set()

    def _write_pending(self) -> bool:
        """Commit what is queued, batch by batch; False while the database is away.

        A batch the database refuses for what it holds (not for being away) is written
        record by record, so only a bad record is set aside (see ``_write_each``)."""
        while True:
            with self._lock:
                batch = list(itertools.islice(self._pending, _BATCH))
            if not batch:
                return True
            try:
                self._write(batch)
            except Exception as exc:  # whatever the driver raises, the writer goes on
                if _is_outage(exc):
                    self._degrade(exc)
                    return False
                if not self._write_each(batch):
                    return False
                continue
            self._settle(batch, written=len(batch))

    def _write(self, batch: list[LogEntry | OutputLine]) -> None:
        records = [_values(entry) for entry in batch if isinstance(entry, LogEntry)]
        lines = [_output_values(line) for line in batch if isinstance(line, OutputLine)]
        with self._engine.begin() as conn:
            # Straight to the driver: SQLAlchemy's per-statement work would hold the GIL
            # that the event loop (and the API) is waiting for.
            if records:
                conn.exec_driver_sql(self._insert_sql, records)
            if lines:
                conn.exec_driver_sql(self._output_sql, lines)

    def _write_each(self, batch: list[LogEntry | OutputLine]) -> bool:
        """Write records one at a time; one the database refuses is written again in a
        marked, plain-ASCII form, and only if that is refused too is it set aside (counted
        in ``rejected`` and logged). False if the database went away meanwhile."""
        for item in batch:
            try:
                self._write([item])
            except Exception as exc:
                if _is_outage(exc):
                    self._degrade(exc)
                    return False
                try:
                    self._write([_marked(item, exc)])
                except Exception as again:
                    if _is_outage(again):
                        self._degrade(again)
                        return False
                    logger.error("a log record was refused and set aside: %s: %r", _short(exc), item)
                    with self._lock:
                        self._health.rejected += 1
                    self._settle([item], written=0)
                    continue
                logger.warning("a log record was stored in marked form: %s", _short(exc))
            self._settle([item], written=1)
        return True

    def _settle(self, batch: list, *, written: int) -> None:
        with self._lock:
            # Records dropped for space while we wrote are no longer at the front.
            for entry in batch:
                if self._pending and self._pending[0] is entry:
                    self._pending.popleft()
            self._settled += len(batch)
            self._health.written += written
            self._progress_at = time.monotonic()
            if self._health.status == "degraded":
                logger.warning("log store available again")
            self._health.status = "ok"
            self._health.last_error = None
            self._done.notify_all()

    def _degrade(self, exc: BaseException) -> None:
        with self._lock:
            if self._health.status == "ok":
                logger.error("log store unavailable, keeping records in memory: %s", _short(exc))
            self._health.status = "degraded"
            self._health.last_error = _short(exc)

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._run_writer, name="log-writer", daemon=True)
        self._writer.start()

    def _keep_writer_alive(self) -> None:
        """Start a new writer thread if the current one is gone (it should never be)."""
        writer = self._writer
        if writer is None or writer.is_alive() or self._closing:
            return
        with self._restart_lock:
            if self._writer is writer:
                logger.error("the log writer thread had stopped; starting a new one")
                with self._lock:
                    self._health.restarts += 1
                self._start_writer()

    def _run_writer(self) -> None:
        """The writer thread: an unexpected error restarts the writing loop, never ends it."""
        failures = 0
        while True:
            try:
                self._write_forever()
                return
            except Exception as exc:
                failures += 1
                logger.exception("the log writer failed; restarting it")
                with self._lock:
                    self._health.restarts += 1
                    self._health.last_error = f"the writer failed: {_short(exc)}"
                time.sleep(min(0.05 * 2**failures, 5.0))
                self._wake.set()  # what waits is written at once by the new loop

    def _write_forever(self) -> None:
        days, per_task, interval = self._retention
        next_prune = time.monotonic() + min(interval, 5.0)
        backoff = 0.0
        while True:
            timeout = max(0.0, next_prune - time.monotonic())
            if backoff:
                timeout = min(timeout, backoff)
            if self._wake.wait(timeout) and not self._closing:
                # Records come in bursts (a run's start, then its end): gather a burst into
                # one commit, made once the event loop is done producing it, unless a
                # reader is waiting for it (``flush``).
                self._urgent.wait(_GROUP_COMMIT)
            self._wake.clear()
            self._urgent.clear()
            ok = self._write_pending()
            backoff = 0.0 if ok else min(max(backoff * 2, 0.25), 5.0)
            if self._closing and (ok or not self._pending):
                return
            if (days or per_task) and time.monotonic() >= next_prune and ok:
                try:
                    self.prune(now=time.time())
                except Exception as exc:
                    logger.warning("pruning the log failed: %s", _short(exc))
                next_prune = time.monotonic() + interval

    def flush(self, timeout: float) -> bool:
        self._keep_writer_alive()
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._accepted
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._writer is None:
                    return False
                self._wake.set()
                self._urgent.set()
                self._done.wait(remaining)
        return True

    def health(self) -> StoreHealth:
        self._keep_writer_alive()
        with self._lock:
            health = replace(self._health, pending=len(self._pending))
            if health.pending:
                health.waiting_seconds = time.monotonic() - self._progress_at
        if health.status == "ok" and health.waiting_seconds > self._stuck_after:
            health.status = "degraded"
            health.last_error = (
                f"no record written for {health.waiting_seconds:.0f} s while {health.pending} wait"
            )
        return health

    def close(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._closing = True
            self._wake.set()
            writer.join(timeout=5)
        if self._pending and (writer is None or not writer.is_alive()):
            self._write_pending()
        with self._lock:
            left = len(self._pending)
        if left:
            logger.error("%d log records could not be written before closing", left)
        self._engine.dispose()

    # -- retention ---------------------------------------------------------------------

    def prune(self, *, now: float) -> int:
        days, per_task, _ = self._retention
        t = task_log.c
        newer = sa.alias(task_log, "newer")
        # The newest record of each action of a task is kept whatever its age: it is what
        # restores the task's last run/success/fail after a restart.
        superseded = (
            sa.select(newer.c.id)
            .where(newer.c.task_name == t.task_name, newer.c.action == t.action, newer.c.created > t.created)
            .exists()
        )
        removed = 0
        if days:
            removed += delete_in_chunks(
                self._engine, task_log, sa.and_(t.created < now - days * 86_400, superseded)
            )
            removed += delete_in_chunks(self._engine, run_output, run_output.c.created < now - days * 86_400)
        if per_task:
            with self._engine.connect() as conn:
                crowded = (
                    conn.execute(
                        sa.select(t.task_name).group_by(t.task_name).having(sa.func.count() > per_task)
                    )
                    .scalars()
                    .all()
                )
            for name in crowded:
                with self._engine.connect() as conn:
                    edge = conn.execute(
                        sa.select(t.created, t.id)
                        .where(t.task_name == name)
                        .order_by(t.created.desc(), t.id.desc())
                        .offset(per_task)
                        .limit(1)
                    ).first()
                if edge is not None:
                    removed += delete_in_chunks(
                        self._engine,
                        task_log,
                        sa.and_(t.task_name == name, t.created <= edge.created, t.id <= edge.id, superseded),
                    )
        if removed:
            with self._lock:
                self._health.pruned += removed
            logger.info("pruned %d log records", removed)
        return removed

    # -- reading: the API --------------------------------------------------------------

    def page(self, query: LogQuery) -> LogPage:
        t = task_log.c
        where = []
        if query.tasks:
            where.append(t.task_name.in_(query.tasks))
        if query.actions:
            where.append(t.action.in_(query.actions))
        if query.since is not None:
            where.append(t.created >= query.since)
        if query.until is not None:
            where.append(t.created <= query.until)
        with self._engine.connect() as conn:
            rows, cursor = newest_first(conn, task_log, where, limit=query.limit, cursor=query.cursor)
        return LogPage(entries=[LogEntry(**row._mapping) for row in rows], next_cursor=cursor)

    def output(self, task_name: str, run_id: str, *, after: int = -1, limit: int = 1000) -> list[OutputLine]:
        t = run_output.c
        stmt = (
            sa.select(*(t[name] for name in _OUTPUT_FIELDS))
            .where(t.task_name == task_name, t.run_id == run_id, t.seq > after)
            .order_by(t.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [OutputLine(**row._mapping) for row in conn.execute(stmt)]

    def latest_actions(self) -> dict[str, dict[str, float]]:
        with self._lock:
            pending = list(self._pending)
        t = task_log.c
        stmt = sa.select(t.task_name, t.action, sa.func.max(t.created)).group_by(t.task_name, t.action)
        latest: dict[str, dict[str, float]] = {}
        with self._engine.connect() as conn:
            for name, action, created in conn.execute(stmt):
                latest.setdefault(name, {})[action] = created
        for entry in pending:
            if not isinstance(entry, LogEntry):
                continue
            actions = latest.setdefault(entry.task_name, {})
            if entry.created > actions.get(entry.action, -1.0):
                actions[entry.action] = entry.created
        return latest

    def unfinished_runs(self) -> list[LogEntry]:
        self.flush(timeout=5)
        with self._engine.connect() as conn:
            since = conn.execute(
                sa.select(log_marks.c.value).where(log_marks.c.name == _CHECKED_UNTIL)
            ).scalar()
        run, outcome = sa.alias(task_log, "run"), sa.alias(task_log, "outcome")
        ended = (
            sa.select(outcome.c.id)
            .where(
                outcome.c.task_name == run.c.task_name,
                outcome.c.run_id == run.c.run_id,
                outcome.c.action != "run",
            )
            .exists()
        )
        stmt = (
            sa.select(run)
            .where(run.c.action == "run", run.c.run_id.is_not(None), ~ended)
            .order_by(run.c.created, run.c.id)
        )
        if since is not None:
            stmt = stmt.where(run.c.created >= since)
        with self._engine.connect() as conn:
            return [LogEntry(**row._mapping) for row in conn.execute(stmt)]

    def mark_runs_checked(self, until: float) -> None:
        self.flush(timeout=5)
        with self._engine.begin() as conn:
            conn.execute(sa.delete(log_marks).where(log_marks.c.name == _CHECKED_UNTIL))
            conn.execute(log_marks.insert().values(name=_CHECKED_UNTIL, value=until))

    # -- reading: the redbird interface Rocketry uses ----------------------------------

    def _where(self, query: dict) -> list[sa.ColumnElement]:
        clauses = []
        for key, value in query.items():
            if key not in task_log.c:
                raise KeyError(f"log records have no field {key!r}")
            clause = _condition(task_log.c[key], value)
            if clause is not None:
                clauses.append(clause)
        return clauses

    def _pending_matching(self, query: dict) -> list[LogEntry]:
        with self._lock:
            pending = list(self._pending)
        if not pending:
            return []
        matcher = QueryMatcher(query, value_getter=getattr)
        return [entry for entry in pending if isinstance(entry, LogEntry) and entry in matcher]

    def query_items(self, query: dict) -> Iterator[LogEntry]:
        # Queued records are read before the table: one committed in between is then
        # seen twice (and dropped by key), never missed.
        pending = self._pending_matching(query)
        t = task_log.c
        stmt = sa.select(task_log).where(*self._where(query)).order_by(t.created, t.id)
        with self._engine.connect() as conn:
            stored = [LogEntry(**row._mapping) for row in conn.execute(stmt)]
        if pending:
            seen = {entry.key for entry in stored}
            stored.extend(entry for entry in pending if entry.key not in seen)
            stored.sort(key=lambda entry: entry.created)
        return iter(stored)

    def query_read_first(self, query: dict) -> LogEntry | None:
        return next(self.query_items(query), None)

    def query_read_last(self, query: dict) -> LogEntry | None:
        pending = self._pending_matching(query)
        t = task_log.c
        stmt = sa.select(task_log).where(*self._where(query)).order_by(t.created.desc(), t.id.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        candidates = pending + ([LogEntry(**row._mapping)] if row is not None else [])
        return max(candidates, key=lambda entry: entry.created, default=None)

    def query_count(self, query: dict) -> int:
        return sum(1 for _ in self.query_items(query))

    def query_update(self, query: dict, values: dict) -> None:
        self.flush(timeout=5)
        with self._engine.begin() as conn:
            conn.execute(sa.update(task_log).where(*self._where(query)).values(**values))

    def query_delete(self, query: dict) -> int:
        self.flush(timeout=5)
        with self._engine.begin() as conn:
            return conn.execute(sa.delete(task_log).where(*self._where(query))).rowcount


def _values(entry: LogEntry) -> tuple:
    # Bounded to the columns, and without text UTF-8 cannot encode: neither may cost a batch.
    return (
        storable(entry.task_name[:255]),
        entry.action[:16],
        entry.created,
        None if entry.run_id is None else storable(entry.run_id[:64]),
        entry.start,
        entry.end,
        entry.runtime,
        None if entry.message is None else storable(entry.message),
        None if entry.exc_text is None else storable(entry.exc_text),
    )


def _output_values(line: OutputLine) -> tuple:
    return (
        storable(line.task_name[:255]),
        storable(line.run_id[:64]),
        line.seq,
        line.created,
        line.stream[:10],
        storable(line.text),
    )


def _is_outage(exc: BaseException) -> bool:
    """Whether the database is away or refuses all writes (retry later), rather than
    refusing what one record holds (set that record aside)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa.exc.OperationalError | sa.exc.ProgrammingError | sa.exc.DisconnectionError | sa.exc.TimeoutError,
    )


def _ascii(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    # NUL is ASCII, but PostgreSQL's text cannot hold it.
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\x00", "\\x00")[:limit]


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _marked(item: LogEntry | OutputLine, exc: BaseException) -> LogEntry | OutputLine:
    """``item`` in a form any database takes: plain ASCII, bounded, finite times, with a
    note saying that the original was refused."""
    note = f"[stored in marked form: the database refused the original ({type(exc).__name__})]"
    if isinstance(item, OutputLine):
        return replace(
            item,
            task_name=_ascii(item.task_name, 255),
            run_id=_ascii(item.run_id, 64),
            created=_finite(item.created) or time.time(),
            stream=_ascii(item.stream, 10),
            text=f"{note} {_ascii(item.text, 100_000)}",
        )
    return replace(
        item,
        task_name=_ascii(item.task_name, 255),
        action=_ascii(item.action, 16),
        created=_finite(item.created) or time.time(),
        run_id=_ascii(item.run_id, 64),
        start=_finite(item.start),
        end=_finite(item.end),
        runtime=_finite(item.runtime),
        message=f"{note} {_ascii(item.message, 10_000)}",
        exc_text=_ascii(item.exc_text, 1_000_000),
    )


def _insert_sql(dialect: sa.Dialect, table: str, fields: tuple[str, ...]) -> str:
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{}", "named": ":{}"}
    style = marker.get(dialect.paramstyle)
    if style is None or "{}" in style:
        raise ValueError(f"unsupported parameter style {dialect.paramstyle!r}")
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in fields)
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join([style] * len(fields))})"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300]
