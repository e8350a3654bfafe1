"""Routes of the ``/logs`` resource: the run history of every task, filtered and paged."""

from control.deps import ServiceDep
from control.errors import InvalidInputError
from control.logstores.base import LogCursor, LogQuery
from control.schemas import Action, LogList, LogRecordPublic
from control.service import SchedulerService

import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

router = APIRouter(prefix="/logs", tags=["logs"])


def _epoch(value: datetime.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)  # times without a zone are UTC
    return value.timestamp()


def _when(value: float | None) -> datetime.datetime | None:
    return None if value is None else datetime.datetime.fromtimestamp(value, tz=datetime.UTC)


class LogFilter(BaseModel):
    """Query parameters shared by the log routes."""

    model_config = ConfigDict(extra="forbid")

    task: list[Annotated[str, Field(max_length=255)]] = Field(
        [], description="Only these tasks (repeat the parameter for several)"
    )
    action: list[Action] = Field([], description="Only these actions (repeatable)")
    since: datetime.datetime | None = Field(
        None, description="Records created at or after: ISO 8601 (UTC if no zone) or epoch seconds"
    )
    until: datetime.datetime | None = Field(None, description="Records created at or before")
    limit: int = Field(100, ge=1, le=1000, description="Records per page")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page")

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, value: str | None) -> str | None:
        if value is not None:
            LogCursor.decode(value)
        return value

    def to_query(self, *, tasks: tuple[str, ...] | None = None) -> LogQuery:
        since, until = _epoch(self.since), _epoch(self.until)
        if since is not None and until is not None and since > until:
            raise InvalidInputError("since is after until", field="since", value=self.since, location="query")
        return LogQuery(
            tasks=tasks if tasks is not None else tuple(self.task),
            actions=tuple(self.action),
            since=since,
            until=until,
            limit=self.limit,
            cursor=LogCursor.decode(self.cursor) if self.cursor else None,
        )


LogFilterDep = Annotated[LogFilter, Query()]


def log_list(service: SchedulerService, query: LogQuery) -> LogList:
    page = service.read_logs(query)
    return LogList(
        data=[
            LogRecordPublic(
                id=entry.id,
                task_name=entry.task_name,
                action=entry.action,
                created=_when(entry.created),
                run_id=entry.run_id,
                start=_when(entry.start),
                end=_when(entry.end),
                runtime=entry.runtime,
                message=entry.message,
                exc_text=entry.exc_text,
            )
            for entry in page.entries
        ],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@router.get("")
async def list_logs(filters: LogFilterDep, service: ServiceDep) -> LogList:
    """Read the run history, newest first, filtered by task, action and time."""
    return await run_in_threadpool(log_list, service, filters.to_query())
