"""The ``/audit`` route: who changed what, from where, and how it ended (admins only)."""

from control.deps import ADMINS
from control.routes.filters import PageFilter, utc
from control.stores.base import AuditQuery, AuditStore

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditFilter(PageFilter):
    actor: list[Annotated[str, Field(max_length=100)]] = Field([], description="Only these token names")
    task: list[Annotated[str, Field(max_length=255)]] = Field(
        [], description="Only requests about these tasks"
    )


class AuditRecordPublic(BaseModel):
    id: int
    created: datetime
    actor: str = Field(description="Token name; `open` when no token is configured")
    client: str | None = Field(description="Address the request came from")
    method: str
    route: str
    task: str | None
    status: int = Field(description="HTTP status of the answer")


class AuditList(BaseModel):
    data: list[AuditRecordPublic]
    next_cursor: str | None


@router.get("", dependencies=ADMINS)
async def list_audit(filters: Annotated[AuditFilter, Query()], request: Request) -> AuditList:
    """Read the audit trail, newest first."""
    since, until = filters.window()
    query = AuditQuery(
        actors=tuple(filters.actor),
        tasks=tuple(filters.task),
        since=since,
        until=until,
        limit=filters.limit,
        cursor=filters.decoded_cursor(),
    )
    store: AuditStore = request.app.state.audit
    entries, cursor = await run_in_threadpool(store.page, query)
    return AuditList(
        data=[
            AuditRecordPublic(
                id=e.id,
                created=utc(e.created),
                actor=e.actor,
                client=e.client,
                method=e.method,
                route=e.route,
                task=e.task,
                status=e.status,
            )
            for e in entries
        ],
        next_cursor=cursor.encode() if cursor else None,
    )
