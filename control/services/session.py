"""SessionService: the scheduler itself: its state, its health and its store's, and its stop."""

from __future__ import annotations

from control.engine.loop import ControlScheduler
from control.schemas.session import (
    CeleryStatePublic,
    HealthPublic,
    SessionConfigPublic,
    SessionPublic,
    StoreHealthPublic,
    StoreStatePublic,
)
from control.services.audit import AuditService
from control.services.history import HistoryService
from control.services.replicas import ReplicaService
from control.settings import Settings
from control.stores.base import StoreHealth, Stores
from control.times import utc

import time


class SessionService:
    def __init__(
        self,
        session,
        scheduler: ControlScheduler,
        *,
        settings: Settings,
        stores: Stores,
        audit: AuditService,
        history: HistoryService,
        replicas: ReplicaService,
    ):
        self._replicas = replicas
        self._session = session
        self._scheduler = scheduler
        self._settings = settings
        self._stores = stores
        self._audit = audit
        self._history = history

    def info(self) -> SessionPublic:
        scheduler, settings = self._scheduler, self._settings
        tasks = self._session.tasks
        started = scheduler.started_at
        replica = self._replicas.info()
        replica["leader_since"] = utc(replica["leader_since"])
        return SessionPublic(
            **replica,
            state=scheduler.state,
            started_at=utc(started),
            uptime_seconds=time.time() - started if started is not None else None,
            task_count=len(tasks),
            running_count=sum(1 for task in tasks if task.is_alive()),
            store=self._store_state(),
            cycles=scheduler.n_cycles,
            checks=scheduler.n_checks,
            event_subscribers=self._history.subscribers,
            celery=self._celery_state(),
            mean_cycle_seconds=scheduler.mean_cycle_seconds,
            config=SessionConfigPublic(
                host=settings.host,
                port=settings.port,
                database=self._stores.database,
                task_packages=settings.task_packages,
                cycle_sleep=settings.cycle_sleep,
                default_timeout=settings.default_timeout,
                shutdown_timeout=settings.shutdown_timeout,
                retention_days=settings.retention_days,
                retention_per_task=settings.retention_per_task,
            ),
        )

    def health(self) -> HealthPublic:
        store = self._stores.logs.health()
        state = self._scheduler.state
        if state != "running":
            status = "unavailable"
        else:
            reachable = self._replicas.coordination_error() is None and self._broker_error() is None
            status = "ok" if store.status == "ok" and reachable else "degraded"
        return HealthPublic(
            status=status,
            scheduler=state,
            store=_store_health(store),
            coordination_error=self._replicas.coordination_error(),
            broker_error=self._broker_error(),
        )

    def _celery_state(self) -> CeleryStatePublic | None:
        remote = self._scheduler.remote
        dispatcher = remote.dispatcher
        if dispatcher is None:
            return None
        return CeleryStatePublic(
            queue=self._settings.celery_queue,
            following=remote.count,
            waiting=dispatcher.pending,
            sent=dispatcher.sent,
            last_error=dispatcher.last_error,
        )

    def _broker_error(self) -> str | None:
        """Why the Celery broker cannot be reached, while some task runs on Celery."""
        remote = self._scheduler.remote
        if remote.dispatcher is None or not remote.used():
            return None
        return remote.dispatcher.last_error

    def request_shutdown(self) -> None:
        self._scheduler.request_stop()

    def _store_state(self) -> StoreStatePublic:
        store = self._stores.logs.health()
        return StoreStatePublic(
            **_store_health(store).model_dump(),
            last_error=store.last_error,
            writer_restarts=store.restarts,
            audit_failures=self._audit.failed,
        )


def _store_health(store: StoreHealth) -> StoreHealthPublic:
    return StoreHealthPublic(
        status=store.status,
        pending=store.pending,
        lost=store.lost,
        rejected=store.rejected,
        waiting_seconds=round(store.waiting_seconds, 3),
    )
