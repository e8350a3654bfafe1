"""ConditionService: a condition checked before it is used: its canonical text, and when it
would next be due (worked out off the event loop, within a time budget)."""

from __future__ import annotations

from control.conditions import canonical_text, parse_condition
from control.prediction import BackgroundPredictor, Forecast
from control.schemas.conditions import ConditionChecked
from control.times import utc

import time

_PREVIEW_BUDGET = 0.5  # seconds a due-time preview may take


class ConditionService:
    def __init__(self, session, *, predictor: BackgroundPredictor):
        self._session = session
        self._predictor = predictor

    async def check(self, text: str, count: int) -> ConditionChecked:
        """Parse ``text`` (bounded in size, nesting and parts) and preview its due times off
        the event loop, giving up after ``_PREVIEW_BUDGET`` seconds (the answer says so)."""
        deadline = time.monotonic() + _PREVIEW_BUDGET
        condition = parse_condition(text, session=self._session, field="condition")
        forecast = Forecast([])
        if count:
            forecast = await self._predictor.next_runs(
                condition, like=None, now=time.time(), count=count, deadline=deadline
            )
        return ConditionChecked(
            condition=canonical_text(condition, session=self._session),
            next_runs=[utc(t) for t in forecast.times] if forecast.times is not None else None,
            complete=forecast.complete,
        )
