"""Models of the ``/logs`` resource: a run's records, and how they are asked for."""

from __future__ import annotations

from control.actions import Action
from control.schemas.common import PageFilter

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field


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
    epoch: int | None = Field(description="Leadership epoch of the replica that logged it")


class LogRecordPublic(RunRecordFields):
    id: int


class LogList(BaseModel):
    data: list[LogRecordPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class LogFilter(PageFilter):
    """Query parameters of the log routes."""

    task: list[Annotated[str, Field(max_length=255)]] = Field(
        [], description="Only these tasks (repeat the parameter for several)"
    )
    action: list[Action] = Field([], description="Only these actions (repeatable)")
    run_id: list[Annotated[str, Field(max_length=64)]] = Field(
        [], max_length=100, description="Only the records of these runs (repeatable)"
    )
