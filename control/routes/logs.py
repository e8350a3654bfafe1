"""Routes of the ``/logs`` resource: the run history of every task, filtered and paged."""

from control.deps import READERS, RuntimeDep
from control.routes.filters import PageFilter, utc
from control.schemas import Action, LogList, LogRecordPublic
from control.services.runtime import RuntimeService
from control.stores.base import LogQuery

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

router = APIRouter(prefix="/logs", tags=["logs"])


class LogFilter(PageFilter):
    """Query parameters of the log routes."""

    task: list[Annotated[str, Field(max_length=255)]] = Field(
        [], description="Only these tasks (repeat the parameter for several)"
    )
    action: list[Action] = Field([], description="Only these actions (repeatable)")

    def to_query(self, *, tasks: tuple[str, ...] | None = None) -> LogQuery:
        since, until = self.window()
        return LogQuery(
            tasks=tasks if tasks is not None else tuple(self.task),
            actions=tuple(self.action),
            since=since,
            until=until,
            limit=self.limit,
            cursor=self.decoded_cursor(),
        )


LogFilterDep = Annotated[LogFilter, Query()]


def log_list(runtime: RuntimeService, query: LogQuery) -> LogList:
    page = runtime.read_logs(query)
    return LogList(
        data=[
            LogRecordPublic(
                id=entry.id,
                task_name=entry.task_name,
                action=entry.action,
                created=utc(entry.created),
                run_id=entry.run_id,
                start=utc(entry.start),
                end=utc(entry.end),
                runtime=entry.runtime,
                message=entry.message,
                exc_text=entry.exc_text,
            )
            for entry in page.entries
        ],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@router.get("", dependencies=READERS)
async def list_logs(filters: LogFilterDep, runtime: RuntimeDep) -> LogList:
    """Read the run history, newest first, filtered by task, action and time."""
    return await run_in_threadpool(log_list, runtime, filters.to_query())
