"""The API's request and response models (pydantic 2)."""

from control.conditions import MAX_LENGTH

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Execution = Literal["main", "async", "thread", "process"]
EditableExecution = Literal["async", "thread", "process"]
Action = Literal["run", "success", "fail", "terminate", "inaction", "crash"]
ConditionText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="A Rocketry condition, for example `every 10 minutes` or `daily after 07:00`",
        examples=["every 10 minutes"],
    ),
]


class TaskPublic(BaseModel):
    name: str
    description: str | None
    start_cond: str = Field(description="When the task starts; parses back to the same condition")
    end_cond: str = Field(description="When a running task is terminated")
    execution: Execution
    priority: int
    timeout: float | None = Field(description="Seconds a run may take; null uses the default")
    disabled: bool
    status: Action | None = Field(description="Outcome of the latest run, or `run` while running")
    is_running: bool
    last_run: datetime | None
    last_success: datetime | None
    last_fail: datetime | None
    last_terminate: datetime | None
    last_crash: datetime | None


class TaskList(BaseModel):
    data: list[TaskPublic]
    count: int


class TaskUpdate(BaseModel):
    """Fields to change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    start_cond: ConditionText | None = None
    end_cond: ConditionText | None = None
    timeout: Annotated[float, Field(gt=0, le=366 * 86_400)] | None = Field(
        None, description="Seconds; null returns to the default"
    )
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] | None = None
    execution: EditableExecution | None = Field(
        None, description="`main` is not offered: it would run the task inside the scheduler's own loop"
    )
    disabled: bool | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None


RunParameters = dict[Annotated[str, Field(max_length=200)], JsonValue]


class ActionAccepted(BaseModel):
    task: str
    action: Literal["run", "terminate"]
    detail: str


class LogRecordPublic(BaseModel):
    id: int
    task_name: str
    action: Action
    created: datetime
    run_id: str | None
    start: datetime | None
    end: datetime | None
    runtime: float | None = Field(description="Seconds")
    message: str | None
    exc_text: str | None = Field(description="Traceback of a failure")


class LogList(BaseModel):
    data: list[LogRecordPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


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
    status: Literal["ok", "degraded"]
    pending: int = Field(description="Records waiting in memory to be written")
    lost: int = Field(description="Records dropped because the store was away too long")


class StoreStatePublic(StoreHealthPublic):
    last_error: str | None = Field(description="Why the store is degraded")


class SessionPublic(BaseModel):
    state: Literal["created", "starting", "running", "stopping", "stopped", "crashed"]
    started_at: datetime | None
    uptime_seconds: float | None
    task_count: int
    running_count: int
    cycles: int = Field(description="Passes the scheduler made over the due tasks")
    checks: int = Field(description="Start conditions checked so far (only due tasks are checked)")
    mean_cycle_seconds: float | None = Field(description="Average time of the passes of the last 10 s")
    store: StoreStatePublic
    config: SessionConfigPublic


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    scheduler: str
    store: StoreHealthPublic


class Message(BaseModel):
    detail: str
