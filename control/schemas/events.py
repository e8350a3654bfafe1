"""Models of the live streams: events (``/events``) and a run's output."""

from __future__ import annotations

from control.actions import EventKind
from control.schemas.logs import RunRecordFields

from datetime import datetime

from pydantic import BaseModel, Field, JsonValue


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


class OutputLinePublic(BaseModel):
    seq: int
    created: datetime
    stream: str = Field(description="stdout, stderr, or log (the task's logging records)")
    text: str


class RunOutputPublic(BaseModel):
    task_name: str
    run_id: str
    finished: bool
    lines: list[OutputLinePublic]
