"""RuntimeService: the scheduler itself — its state, health, history and shutdown."""

from __future__ import annotations

from control.events import Subscription
from control.schemas import (
    HealthPublic,
    SessionConfigPublic,
    SessionPublic,
    StoreHealthPublic,
    StoreStatePublic,
)
from control.services.context import Context, utc
from control.stores.base import LogPage, LogQuery, OutputLine, StoreHealth

import asyncio
import logging
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_FINAL = ("success", "fail", "terminate", "inaction", "crash")


@dataclass(frozen=True)
class RunOutput:
    known: bool
    finished: bool
    lines: list[OutputLine]


class RuntimeService:
    def __init__(self, context: Context):
        self._ctx = context
        self._scheduler = context.scheduler
        self._store = context.stores.logs
        self._output = context.stores.output

    def read_logs(self, query: LogQuery) -> LogPage:
        """A page of the log; blocking (database I/O), so call it off the event loop."""
        if self._store.health().status == "ok":
            # What was logged before the request is part of the answer.
            self._store.flush(timeout=1.0)
        return self._store.page(query)

    def session_info(self) -> SessionPublic:
        scheduler = self._scheduler
        settings = self._ctx.settings
        tasks = self._ctx.session.tasks
        started = scheduler.started_at
        return SessionPublic(
            state=scheduler.state,
            started_at=utc(started),
            uptime_seconds=time.time() - started if started is not None else None,
            task_count=len(tasks),
            running_count=sum(1 for task in tasks if task.is_alive()),
            store=self._store_state(),
            cycles=scheduler.n_cycles,
            checks=scheduler.n_checks,
            event_subscribers=self._ctx.events.subscribers,
            mean_cycle_seconds=scheduler.mean_cycle_seconds,
            config=SessionConfigPublic(
                host=settings.host,
                port=settings.port,
                database=self._ctx.stores.database,
                task_packages=settings.task_packages,
                cycle_sleep=settings.cycle_sleep,
                default_timeout=settings.default_timeout,
                shutdown_timeout=settings.shutdown_timeout,
                retention_days=settings.retention_days,
                retention_per_task=settings.retention_per_task,
            ),
        )

    def _store_state(self) -> StoreStatePublic:
        store = self._store.health()
        return StoreStatePublic(
            **_store_health(store).model_dump(),
            last_error=store.last_error,
            writer_restarts=store.restarts,
            audit_failures=self._ctx.audit_failures(),
        )

    async def keep_audit_pruned(self) -> None:
        """Prune the audit trail by age every retention interval, off the event loop."""
        settings = self._ctx.settings
        days = settings.audit_retention_days
        if days is None:
            return
        delay = min(settings.retention_interval, 5.0)
        while True:
            await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self._ctx.stores.audit.prune, now=time.time(), days=days)
            except Exception as exc:  # the database may be away; the next pass tries again
                logger.warning("pruning the audit trail failed: %s", str(exc).splitlines()[0])
            delay = settings.retention_interval

    def request_shutdown(self) -> None:
        self._scheduler.request_stop()

    def health(self) -> HealthPublic:
        store = self._store.health()
        scheduler_state = self._scheduler.state
        if scheduler_state != "running":
            status = "unavailable"
        else:
            status = "ok" if store.status == "ok" else "degraded"
        return HealthPublic(
            status=status,
            scheduler=scheduler_state,
            store=_store_health(store),
        )

    # -- the event stream --------------------------------------------------------------

    def subscribe(self, *, tasks=None, kinds=None, after: int | None = None) -> Subscription:
        return self._ctx.events.subscribe(tasks=tasks, kinds=kinds, after=after)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._ctx.events.unsubscribe(subscription)

    def run_output(self, task: str, run_id: str, *, after: int = -1) -> RunOutput:
        """A run's stored output and whether the run has ended; blocking (database I/O)."""
        store = self._store
        if store.health().status == "ok":
            store.flush(timeout=1.0)
        records = store.filter_by(task_name=task, run_id=run_id).all()
        lines = self._output.output(task, run_id, after=after, limit=100_000)
        return RunOutput(
            known=bool(records) or bool(lines),
            finished=any(r.action in _FINAL for r in records),
            lines=lines,
        )


def _store_health(store: StoreHealth) -> StoreHealthPublic:
    return StoreHealthPublic(
        status=store.status,
        pending=store.pending,
        lost=store.lost,
        rejected=store.rejected,
        waiting_seconds=round(store.waiting_seconds, 3),
    )
