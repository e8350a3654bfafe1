"""Retention of the log: records past an age, and beyond a number per task, are removed in
the background; each task's newest record of each action is always kept (it is what gives
the task its last run, success and failure back after a restart)."""

from __future__ import annotations

from control.stores.sql.engine import delete_in_chunks
from control.stores.sql.tables import run_output, task_log

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Retention:
    days: float | None = None  # records older than this go (None: kept)
    per_task: int | None = None  # at most this many per task (None: no limit)
    every: float = 300.0  # seconds between two prunes

    @property
    def active(self) -> bool:
        return bool(self.days or self.per_task)


def prune(engine: sa.Engine, retention: Retention, *, now: float) -> int:
    """Apply ``retention`` once; returns how many records (and output lines) went."""
    t = task_log.c
    newer = sa.alias(task_log, "newer")
    superseded = (
        sa.select(newer.c.id)
        .where(newer.c.task_name == t.task_name, newer.c.action == t.action, newer.c.created > t.created)
        .exists()
    )
    removed = 0
    if retention.days:
        cutoff = now - retention.days * 86_400
        removed += delete_in_chunks(engine, task_log, sa.and_(t.created < cutoff, superseded))
        removed += delete_in_chunks(engine, run_output, run_output.c.created < cutoff)
    if retention.per_task:
        with engine.connect() as conn:
            crowded = (
                conn.execute(
                    sa.select(t.task_name).group_by(t.task_name).having(sa.func.count() > retention.per_task)
                )
                .scalars()
                .all()
            )
        for name in crowded:
            with engine.connect() as conn:
                edge = conn.execute(
                    sa.select(t.created, t.id)
                    .where(t.task_name == name)
                    .order_by(t.created.desc(), t.id.desc())
                    .offset(retention.per_task)
                    .limit(1)
                ).first()
            if edge is not None:
                removed += delete_in_chunks(
                    engine,
                    task_log,
                    sa.and_(t.task_name == name, t.created <= edge.created, t.id <= edge.id, superseded),
                )
    return removed
