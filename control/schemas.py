"""The API's request and response models (pydantic 2)."""

from control.definitions.model import ConditionText, Origin, Overlap

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Execution = Literal["main", "async", "thread", "process"]
Action = Literal["run", "success", "fail", "terminate", "inaction", "crash"]


class TaskPublic(BaseModel):
    name: str
    description: str | None
    origin: Origin = Field(
        description="`code` (defined in the task packages) or `runtime` (created through the API)"
    )
    target: str | None = Field(description="What it runs: `module:function`, or the command")
    start_cond: str = Field(description="When the task starts; parses back to the same condition")
    end_cond: str = Field(description="When a running task is terminated")
    execution: Execution
    priority: int
    timeout: float | None = Field(description="Seconds a run may take; null uses the default")
    parameters: dict[str, JsonValue] = Field(description="Parameters set through the API")
    overlap: Overlap
    disabled: bool
    overridden: list[str] = Field(description="Fields of a code task changed through the API")
    status: Action | Literal["queued"] | None = Field(
        description="Outcome of the latest run, `run` while running, or `queued` while it waits "
        "for a free process slot"
    )
    is_running: bool
    next_run: datetime | None = Field(description="When it is next due, if time alone decides it")
    last_run: datetime | None
    last_success: datetime | None
    last_fail: datetime | None
    last_terminate: datetime | None
    last_crash: datetime | None


class TaskList(BaseModel):
    data: list[TaskPublic]
    count: int


class DisableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=1000, description="Kept in the task's history")


RunParameters = dict[Annotated[str, Field(max_length=200)], JsonValue]


class ActionAccepted(BaseModel):
    task: str
    action: Literal["run", "terminate"]
    detail: str


class RunRecordFields(BaseModel):
    """One status change of one run: the same fields in the log and in the event stream."""

    task_name: str
    action: Action
    created: datetime
    run_id: str | None
    start: datetime | None
    end: datetime | None
    runtime: float | None = Field(description="Seconds")
    message: str | None
    exc_text: str | None = Field(description="Traceback of a failure")


class LogRecordPublic(RunRecordFields):
    id: int


EventKind = Literal[
    "run",
    "success",
    "fail",
    "terminate",
    "inaction",
    "crash",
    "create",
    "edit",
    "delete",
    "disable",
    "enable",
    "restore",
    "reset",
    "import",
    "output",
]


class EventFields(BaseModel):
    event_id: int = Field(description="Send it back as Last-Event-ID to resume after it")
    kind: EventKind = Field(description="The event's name in the stream")


class RunEventPublic(EventFields, RunRecordFields):
    """A run's status change (kind = action): a log record as ``GET /logs`` shows it, less its id."""


class OutputEventPublic(EventFields):
    """A line a run wrote (kind `output`), as ``GET /tasks/{name}/runs/{run_id}/output`` shows it."""

    task_name: str
    run_id: str
    seq: int
    created: datetime
    stream: str
    text: str


class ChangeEventPublic(EventFields):
    """A change to a task's definition (kind: create, edit, delete...), as its version shows it."""

    task_name: str
    created: datetime
    changes: dict[str, list[JsonValue]]
    actor: str
    reason: str | None


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


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    scheduler: str
    store: StoreHealthPublic


class Message(BaseModel):
    detail: str


class VersionPublic(BaseModel):
    id: int
    task_name: str
    created: datetime
    actor: str = Field(description="Token name (`open` when no token is configured)")
    client: str | None = Field(description="Address the change came from")
    action: Literal["create", "edit", "disable", "enable", "delete", "restore", "reset", "import"]
    changes: dict[str, list[JsonValue]] = Field(description="`{field: [before, after]}`")
    reason: str | None
    origin: Origin
    definition: dict[str, JsonValue] | None = Field(
        description="What was stored after the change: a runtime task whole, a code task's edited fields"
    )


class VersionList(BaseModel):
    data: list[VersionPublic]
    next_cursor: str | None


class BrokenDefinition(BaseModel):
    name: str
    origin: Origin
    reason: str
    definition: dict[str, JsonValue]


class ConditionCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: ConditionText
    count: int = Field(5, ge=0, le=50, description="How many due times to preview")


class ConditionChecked(BaseModel):
    condition: str = Field(description="Canonical text of the parsed condition")
    next_runs: list[datetime] | None = Field(
        description="When a new task with this condition would be due (each run assumed to succeed at "
        "once); null when time alone does not decide it"
    )
    complete: bool = Field(
        description="False when working out the due times took too long: `next_runs` has those found "
        "so far (or is null), and more may follow"
    )


class ConditionNode(BaseModel):
    condition: str
    type: str
    value: bool | None = Field(description="Its value now; null when evaluating it failed")
    error: str | None
    children: list["ConditionNode"]


class Explanation(BaseModel):
    task: str
    would_start: bool = Field(description="Whether a check now would start it")
    decision: Literal["start", "replace", "buffer", "running", "not_due", "no_capacity", "on_hold"] = Field(
        description="What a check now decides: start (or replace the running run), buffer one start "
        "for the end of the running run, or not start (already running, not due, no process slot, "
        "on hold)"
    )
    reasons: list[str] = Field(description="Why it would or would not start, in words")
    disabled: bool
    running: bool
    run_requested: bool = Field(description="A run request waits to start")
    overlap: Overlap
    on_hold: bool
    start_cond: ConditionNode
    next_run: datetime | None


class ParameterValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue


class ParameterPublic(BaseModel):
    name: str
    value: JsonValue


class ParameterList(BaseModel):
    data: list[ParameterPublic]
    count: int


class DefinitionsDocument(BaseModel):
    """Every definition made through the API: runtime tasks whole, code tasks' edits, and
    session parameters. Export it from one service and import it into another."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["rocketry-control-plane/definitions@1"] = "rocketry-control-plane/definitions@1"
    runtime_tasks: list[dict[str, JsonValue]] = []
    code_task_edits: dict[str, dict[str, JsonValue]] = {}
    parameters: dict[str, JsonValue] = {}


class ImportChange(BaseModel):
    target: str = Field(description="A task name, or `parameter:<name>`")
    action: Literal["create", "update", "unchanged", "error"]
    changes: dict[str, list[JsonValue]] = {}
    error: str | None = None


class ImportResult(BaseModel):
    dry_run: bool
    applied: bool
    changes: list[ImportChange]
