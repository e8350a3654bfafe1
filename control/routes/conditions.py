"""Routes of ``/conditions``: checking a condition before it is used."""

from control.deps import READERS, ConditionsDep
from control.schemas.conditions import ConditionCheck, ConditionChecked

from fastapi import APIRouter

router = APIRouter(prefix="/conditions", tags=["conditions"])


@router.post("/validate", dependencies=READERS)
async def validate_condition(check: ConditionCheck, conditions: ConditionsDep) -> ConditionChecked:
    """Parse a condition: its canonical text and when it would next be due, or 422 with the parse error."""
    return await conditions.check(check.condition, check.count)
