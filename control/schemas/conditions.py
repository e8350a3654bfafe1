"""Models of the ``/conditions`` resource: checking a condition before it is used."""

from __future__ import annotations

from control.schemas.tasks import ConditionText

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ConditionCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: ConditionText
    count: int = Field(5, ge=0, le=50, description="How many due times to preview")


class ConditionChecked(BaseModel):
    condition: str = Field(description="Canonical text of the parsed condition")
    next_runs: list[datetime] | None = Field(
        description="When a new task with this condition would be due (each run assumed to succeed at "
        "once); null when time alone does not decide it"
    )
    complete: bool = Field(
        description="False when working out the due times took too long: `next_runs` has those found "
        "so far (or is null), and more may follow"
    )
