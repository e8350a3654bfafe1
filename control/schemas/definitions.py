"""Models of the ``/definitions`` resource: the export and import document, broken definitions."""

from __future__ import annotations

from control.schemas.tasks import Origin

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class BrokenDefinition(BaseModel):
    name: str
    origin: Origin
    reason: str
    definition: dict[str, JsonValue]


class DefinitionsDocument(BaseModel):
    """Every definition made through the API: runtime tasks whole, code tasks' edits, and
    session parameters. Export it from one service and import it into another."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["rocketry-control-plane/definitions@1"] = "rocketry-control-plane/definitions@1"
    runtime_tasks: list[dict[str, JsonValue]] = []
    code_task_edits: dict[str, dict[str, JsonValue]] = {}
    parameters: dict[str, JsonValue] = {}


class ImportChange(BaseModel):
    target: str = Field(description="A task name, or `parameter:<name>`")
    action: Literal["create", "update", "unchanged", "error"]
    changes: dict[str, list[JsonValue]] = {}
    error: str | None = None


class ImportResult(BaseModel):
    dry_run: bool
    applied: bool
    changes: list[ImportChange]
