"""Models of the ``/session`` and ``/health`` resources: the scheduler's state, its store's."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SessionConfigPublic(BaseModel):
    host: str
    port: int
    database: str = Field(description="Database URL, password hidden")
    task_packages: list[str]
    cycle_sleep: float
    default_timeout: float
    shutdown_timeout: float
    retention_days: float | None
    retention_per_task: int | None


class StoreHealthPublic(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="`degraded`: the database refuses writes, or no record was written for a while"
    )
    pending: int = Field(description="Records waiting in memory to be written")
    lost: int = Field(description="Records dropped because the store was away too long")
    rejected: int = Field(description="Records the database refused even alone and in a marked form")
    waiting_seconds: float = Field(description="How long records have waited with none written")


class StoreStatePublic(StoreHealthPublic):
    last_error: str | None = Field(description="Why the store is degraded")
    writer_restarts: int = Field(description="Times the writer thread failed and was started again")
    audit_failures: int = Field(description="Audit entries that could not be written")


class CeleryStatePublic(BaseModel):
    queue: str = Field(description="The Celery queue runs go to (SCHEDULER_CELERY_QUEUE)")
    following: int = Field(description="Runs on workers this replica follows until they end")
    waiting: int = Field(description="Runs (and revocations) not yet handed to the broker")
    sent: int = Field(description="Runs handed to the broker since this replica started")
    last_error: str | None = Field(description="Why the broker could not be reached, until it can")


class SessionPublic(BaseModel):
    state: Literal["created", "starting", "running", "stopping", "stopped", "crashed"]
    started_at: datetime | None
    uptime_seconds: float | None
    task_count: int
    running_count: int
    cycles: int = Field(description="Passes the scheduler made over the due tasks")
    checks: int = Field(description="Start conditions checked so far (only due tasks are checked)")
    event_subscribers: int = Field(description="Clients following the live event streams")
    mean_cycle_seconds: float | None = Field(description="Average time of the passes of the last 10 s")
    store: StoreStatePublic
    config: SessionConfigPublic
    role: Literal["leader", "follower"] = Field(
        description="Whether this replica launches tasks (alone, it always leads)"
    )
    replica: str = Field(description="This replica's name (SCHEDULER_REPLICA)")
    leader: str | None = Field(description="The replica that launches tasks (null: none right now)")
    leader_since: datetime | None
    epoch: int | None = Field(description="The leadership epoch, written on every run record")
    replicated: bool = Field(description="Whether replicas share this database (PostgreSQL)")
    celery: CeleryStatePublic | None = Field(
        None, description="Runs on Celery workers (null until some task runs on Celery)"
    )


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    scheduler: str
    store: StoreHealthPublic
    coordination_error: str | None = Field(
        None, description="Replicas: why the shared database cannot be reached (degraded meanwhile)"
    )
    broker_error: str | None = Field(
        None, description="Why the Celery broker cannot be reached while some task runs on Celery (degraded)"
    )
