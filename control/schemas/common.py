"""What every resource's models share: the error body, and the paging query parameters."""

from __future__ import annotations

from control.errors import InvalidInputError
from control.paging import Cursor
from control.times import epoch

import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Message(BaseModel):
    detail: str


class PageFilter(BaseModel):
    """Query parameters of the paged routes: a time range, a page size, a cursor."""

    model_config = ConfigDict(extra="forbid")

    since: datetime.datetime | None = Field(
        None, description="Created at or after: ISO 8601 (UTC if no zone) or epoch seconds"
    )
    until: datetime.datetime | None = Field(None, description="Created at or before")
    limit: int = Field(100, ge=1, le=1000, description="Records per page")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page")

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, value: str | None) -> str | None:
        if value is not None:
            Cursor.decode(value)
        return value

    def window(self) -> tuple[float | None, float | None]:
        since, until = epoch(self.since), epoch(self.until)
        if since is not None and until is not None and since > until:
            raise InvalidInputError("since is after until", field="since", value=self.since, location="query")
        return since, until

    def decoded_cursor(self) -> Cursor | None:
        return Cursor.decode(self.cursor) if self.cursor else None
