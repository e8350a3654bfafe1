"""Models of the ``/session/parameters`` resource."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, JsonValue


class ParameterValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue


class ParameterPublic(BaseModel):
    name: str
    value: JsonValue


class ParameterList(BaseModel):
    data: list[ParameterPublic]
    count: int
