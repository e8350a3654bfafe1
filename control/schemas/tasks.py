"""Models of the ``/tasks`` resource: a task as data (what may be set, what is shown), runs asked
for, explanations, and a task's versions."""

from __future__ import annotations

from control.actions import Action, Change, Decision, Overlap
from control.conditions import MAX_LENGTH

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

Execution = Literal["main", "async", "thread", "process", "celery"]
Origin = Literal["code", "runtime"]
EditableExecution = Literal["async", "thread", "process", "celery"]


def _not_dots(name: str) -> str:
    if name in (".", ".."):
        raise ValueError("a task cannot be named . or ..")
    return name


TaskName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        # Part of URLs, file-like paths in logs, and shown to people: only characters that
        # read the same everywhere (no spaces, no bidirectional controls), and not . or ..
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Unique; ASCII letters, digits, `_`, `-` and `.` (not `.` or `..` alone)",
        examples=["report_eu-2.v1"],
    ),
    AfterValidator(_not_dots),
]
ConditionText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_LENGTH, description="A Rocketry condition, e.g. `every 10 minutes`"),
]
Timeout = Annotated[float, Field(gt=0, le=366 * 86_400, description="Seconds; null uses the default")]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Description = Annotated[str, Field(max_length=10_000)]
Parameters = dict[Annotated[str, Field(min_length=1, max_length=200)], JsonValue]

# The fields an edit may change, on any task. What a task runs (func, command) is fixed.
EDITABLE = (
    "start_cond",
    "end_cond",
    "execution",
    "timeout",
    "priority",
    "parameters",
    "description",
    "disabled",
    "overlap",
)
# Edits that may be null, meaning "back to the default".
NULLABLE = ("timeout", "description")


class TaskFields(BaseModel):
    """Editable fields; in an edit, a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    start_cond: ConditionText | None = None
    end_cond: ConditionText | None = None
    execution: EditableExecution | None = Field(
        None, description="`main` is not offered: it would run the task inside the scheduler's own loop"
    )
    timeout: Timeout | None = None
    priority: Priority | None = None
    parameters: Parameters | None = Field(None, description="Passed to the task's function on every run")
    description: Description | None = None
    disabled: bool | None = None
    overlap: Overlap | None = Field(
        None,
        description=(
            "When the task is due (or run by hand) while a run is going: `skip` (no second "
            "start; a run request gets 409), `allow` (side by side), `buffer_one` (one start "
            "waits for the current run to end), `replace` (the running one is terminated first)"
        ),
    )

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (a null sent is a change to the default)."""
        return self.model_dump(exclude_unset=True)

    @model_validator(mode="after")
    def _nulls_only_where_allowed(self) -> TaskFields:
        for field in self.model_fields_set:
            if getattr(self, field) is None and field not in NULLABLE:
                raise ValueError(f"{field} cannot be null")
        return self


class CommandArgument(BaseModel):
    """How one parameter of a command task goes onto its command line."""

    model_config = ConfigDict(extra="forbid")

    option: str | None = Field(
        None,
        max_length=100,
        pattern=r"^--?[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="The option it is given with (`--rows 5`); null: a positional argument",
        examples=["--rows"],
    )
    type: Literal["string", "integer", "number", "boolean"] = Field(
        "string",
        description="What the value must be; a `boolean` is a flag: the option alone when true",
    )

    @model_validator(mode="after")
    def _flags_have_options(self) -> CommandArgument:
        if self.type == "boolean" and self.option is None:
            raise ValueError("a boolean argument is a flag: give its option")
        return self


ArgumentName = Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class TaskDefinition(BaseModel):
    """A whole task created at runtime: what it runs, and its editable fields."""

    model_config = ConfigDict(extra="forbid")

    name: TaskName
    func: str | None = Field(
        None,
        max_length=500,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="An importable callable, `package.module:function`, from an allowed package",
        examples=["tasks.housekeeping:daily_report"],
    )
    command: str | list[Annotated[str, Field(max_length=1000)]] | None = Field(
        None, description="A command to run (no shell); only when command tasks are enabled"
    )
    arguments: dict[ArgumentName, CommandArgument] = Field(
        {},
        description=(
            "The parameters a command task takes, in command-line order, and how each goes onto "
            "its command line; any other parameter is refused"
        ),
        examples=[{"rows": {"option": "--rows", "type": "integer"}, "region": {"option": None}}],
    )
    start_cond: ConditionText = "false"
    end_cond: ConditionText = "false"
    execution: EditableExecution | None = Field(
        None,
        description="Default: async for coroutine functions, thread for plain ones, process for commands",
    )
    timeout: Timeout | None = None
    priority: Priority = 0
    parameters: Parameters = {}
    description: Description | None = None
    disabled: bool = False
    overlap: Overlap = "skip"

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value):
        if value is not None and not (value.strip() if isinstance(value, str) else value):
            raise ValueError("command is empty")
        return value

    @model_validator(mode="after")
    def _runs_one_thing(self) -> TaskDefinition:
        if (self.func is None) == (self.command is None):
            raise ValueError("give exactly one of func or command")
        if self.arguments and self.command is None:
            raise ValueError("arguments are for command tasks (a function's parameters are its own)")
        return self


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


class VersionPublic(BaseModel):
    id: int
    task_name: str
    created: datetime
    actor: str = Field(description="Token name (`open` when no token is configured)")
    client: str | None = Field(description="Address the change came from")
    action: Change
    changes: dict[str, list[JsonValue]] = Field(description="`{field: [before, after]}`")
    reason: str | None
    origin: Origin
    definition: dict[str, JsonValue] | None = Field(
        description="What was stored after the change: a runtime task whole, a code task's edited fields"
    )


class VersionList(BaseModel):
    data: list[VersionPublic]
    next_cursor: str | None


class ConditionNode(BaseModel):
    condition: str
    type: str
    value: bool | None = Field(description="Its value now; null when evaluating it failed")
    error: str | None
    children: list[ConditionNode]


class Explanation(BaseModel):
    task: str
    would_start: bool = Field(description="Whether a check now would start it")
    decision: Decision = Field(
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
