"""SQLLogStore: the log of every run, and what runs wrote, on SQLAlchemy 2.

Rocketry writes through redbird's ``RepoHandler`` (``add``) and reads through ``filter_by``;
the API pages through ``page``. Records are written by a ``RecordWriter`` thread; reads made
through the redbird interface (Rocketry's) also see records still waiting to be written.
"""

from __future__ import annotations

from control.stores.base import LogEntry, LogPage, LogQuery, LogStore, OutputLine, OutputStore, StoreHealth
from control.stores.sql import queries
from control.stores.sql.engine import insert_sql, matching, newest_first
from control.stores.sql.retention import Retention, prune
from control.stores.sql.tables import LOG_FIELDS, OUTPUT_FIELDS, log_marks, run_output, task_log
from control.stores.sql.writer import RecordWriter
from control.text import storable

import dataclasses
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from pydantic.v1 import PrivateAttr

logger = logging.getLogger(__name__)

_CHECKED_UNTIL = "runs_checked_until"


class SQLLogStore(LogStore, OutputStore):
    """Log records and run output in the service's database (tables made by ``open_stores``)."""

    _engine: sa.Engine = PrivateAttr()
    _writer: RecordWriter = PrivateAttr()
    _retention: Retention = PrivateAttr()
    _insert_log: str = PrivateAttr()
    _insert_output: str = PrivateAttr()
    _epoch: int | None = PrivateAttr(None)

    def __init__(
        self,
        engine: sa.Engine,
        *,
        retention: Retention | None = None,
        max_pending: int = 100_000,
        stuck_after: float = 5.0,
        start: bool = True,
    ):
        super().__init__(model=LogEntry, id_field="id")
        self._engine = engine
        self._retention = retention or Retention()
        self._insert_log = insert_sql(engine.dialect, "task_log", LOG_FIELDS, skip_duplicates=True)
        self._insert_output = insert_sql(engine.dialect, "run_output", OUTPUT_FIELDS)
        self._writer = RecordWriter(
            write=self._write,
            mark=_marked,
            probe=self._probe,
            maintain=self._prune_now if self._retention.active else None,
            maintain_every=self._retention.every,
            max_pending=max_pending,
            stuck_after=stuck_after,
            start=start,
        )

    # -- writing -------------------------------------------------------------------------

    def insert(self, item: LogEntry | OutputLine) -> None:
        if self._epoch is not None and isinstance(item, LogEntry) and item.epoch is None:
            item = dataclasses.replace(item, epoch=self._epoch)
        self._writer.add(item)

    def stamp(self, epoch: int) -> None:
        self._epoch = epoch

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def add_output(self, line: OutputLine) -> None:
        self._writer.add(line)

    def flush(self, timeout: float) -> bool:
        return self._writer.flush(timeout)

    def health(self) -> StoreHealth:
        return self._writer.health()

    def close(self) -> None:
        self._writer.close()

    def _write(self, batch: list[LogEntry | OutputLine]) -> None:
        records = [_values(entry) for entry in batch if isinstance(entry, LogEntry)]
        lines = [_output_values(line) for line in batch if isinstance(line, OutputLine)]
        with self._engine.begin() as conn:
            # Straight to the driver: SQLAlchemy's per-statement work would hold the GIL
            # that the event loop (and the API) is waiting for.
            if records:
                conn.exec_driver_sql(self._insert_log, records)
            if lines:
                conn.exec_driver_sql(self._insert_output, lines)

    def _probe(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(sa.select(task_log.c.id).limit(0))

    # -- retention -----------------------------------------------------------------------

    def prune(self, *, now: float) -> int:
        removed = prune(self._engine, self._retention, now=now)
        if removed:
            self._writer.count_pruned(removed)
            logger.info("pruned %d log records", removed)
        return removed

    def _prune_now(self) -> None:
        self.prune(now=time.time())

    # -- reading: the API ----------------------------------------------------------------

    def page(self, query: LogQuery) -> LogPage:
        one_of = {"task_name": query.tasks, "action": query.actions, "run_id": query.run_ids}
        where = matching(task_log, one_of=one_of, since=query.since, until=query.until)
        with self._engine.connect() as conn:
            rows, cursor = newest_first(conn, task_log, where, limit=query.limit, cursor=query.cursor)
        return LogPage(entries=[LogEntry(**row._mapping) for row in rows], next_cursor=cursor)

    def output(self, task_name: str, run_id: str, *, after: int = -1, limit: int = 1000) -> list[OutputLine]:
        t = run_output.c
        stmt = (
            sa.select(*(t[name] for name in OUTPUT_FIELDS))
            .where(t.task_name == task_name, t.run_id == run_id, t.seq > after)
            .order_by(t.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [OutputLine(**row._mapping) for row in conn.execute(stmt)]

    def latest_actions(self) -> dict[str, dict[str, float]]:
        pending = self._writer.pending()
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

    # -- reading: the redbird interface Rocketry uses ------------------------------------

    def query_items(self, query: dict) -> Iterator[LogEntry]:
        # Waiting records are read before the table: one committed in between is then seen
        # twice (and dropped by key), never missed.
        pending = queries.matching(self._writer.pending(), query)
        t = task_log.c
        stmt = sa.select(task_log).where(*queries.where(query)).order_by(t.created, t.id)
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
        pending = queries.matching(self._writer.pending(), query)
        t = task_log.c
        stmt = (
            sa.select(task_log).where(*queries.where(query)).order_by(t.created.desc(), t.id.desc()).limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        candidates = pending + ([LogEntry(**row._mapping)] if row is not None else [])
        return max(candidates, key=lambda entry: entry.created, default=None)

    def query_count(self, query: dict) -> int:
        return sum(1 for _ in self.query_items(query))

    def query_update(self, query: dict, values: dict) -> None:
        self.flush(timeout=5)
        with self._engine.begin() as conn:
            conn.execute(sa.update(task_log).where(*queries.where(query)).values(**values))

    def query_delete(self, query: dict) -> int:
        self.flush(timeout=5)
        with self._engine.begin() as conn:
            return conn.execute(sa.delete(task_log).where(*queries.where(query))).rowcount


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
        entry.epoch,
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


def _ascii(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    # NUL is ASCII, but PostgreSQL's text cannot hold it.
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\x00", "\\x00")[:limit]


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _marked(item: Any, exc: BaseException) -> LogEntry | OutputLine:
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
