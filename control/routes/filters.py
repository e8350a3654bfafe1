"""Query parameters shared by the paged routes (``/logs``, ``/audit``): time range, size, cursor."""

from control.errors import InvalidInputError
from control.paging import Cursor

import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


def epoch(value: datetime.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)  # times without a zone are UTC
    return value.timestamp()


def utc(value: float | None) -> datetime.datetime | None:
    return None if value is None else datetime.datetime.fromtimestamp(value, tz=datetime.UTC)


class PageFilter(BaseModel):
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
