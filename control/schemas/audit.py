"""Models of the ``/audit`` resource: who changed what, from where, and how it ended."""

from __future__ import annotations

from control.schemas.common import PageFilter

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field


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
