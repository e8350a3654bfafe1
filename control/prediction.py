"""When will a condition hold next, and why does a task (not) run now.

Predictions evaluate the condition with Rocketry itself, on a shadow session whose clock
the predictor moves from one possible change (``horizon.next_change``) to the next, with a
shadow task carrying the real task's history. A condition that depends on other tasks'
runs or on anything else the clock does not decide has no prediction (None).
"""

from __future__ import annotations

from control.conditions import ConditionTexts
from control.engine.horizon import INF, next_change

import math
from dataclasses import dataclass
from typing import Any

from rocketry import Session
from rocketry.core import BaseCondition, Task
from rocketry.core.condition.base import All, Not
from rocketry.core.condition.base import Any as AnyOf

_ACTIONS = ("run", "success", "fail", "terminate", "inaction", "crash")
_MAX_STEPS = 2_000
_HORIZON = 400 * 86_400  # seconds: nothing is predicted further than this


@dataclass
class _Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _noop() -> None:
    return None


class Predictor:
    """Owns a shadow session; used from the event loop only (it moves a shared clock)."""

    def __init__(self, session):
        self._clock = _Clock()
        self._shadow = Session(config={"time_func": self._clock, "execution": "async"})
        self._task = self._shadow.create_task(func=_noop, name="prediction", execution="async")
        self._timezone = session.config.timezone
        self._shadow.config.timezone = self._timezone

    def next_runs(
        self, condition: BaseCondition, *, like: Task | None, now: float, count: int
    ) -> list[float] | None:
        """Up to ``count`` times the condition will hold, each run assumed to succeed at
        once; None when the first cannot be known."""
        shadow = self._task
        for action in _ACTIONS:
            # ``like is not None``, never ``like``: a task's truth value evaluates its condition.
            value = getattr(like, f"_last_{action}", None) if like is not None else None
            setattr(shadow, f"_last_{action}", value)
        times: list[float] = []
        # Never before the task's own latest record: Rocketry reads the log instead of its
        # cached times when a record looks newer than "now".
        known = [getattr(shadow, f"_last_{action}") for action in _ACTIONS]
        moment = max([now, *(t for t in known if t is not None)])
        for _ in range(_MAX_STEPS):
            if moment - now > _HORIZON:
                break
            self._clock.now = moment
            try:
                holds = bool(condition.observe(task=shadow, session=self._shadow))
            except Exception:
                break
            if holds:
                times.append(moment)
                if len(times) == count:
                    break
                shadow._last_run = shadow._last_success = moment
                moment += 1e-3
                continue
            try:
                moment_next = next_change(condition, task=shadow, session=self._shadow, now=moment)
            except Exception:
                break
            if moment_next == INF or moment_next <= moment or math.isnan(moment_next):
                break  # only an event (or something the clock does not decide) can change it
            moment = moment_next
        return times or None


def explain_condition(
    condition: BaseCondition, *, task: Task, session, texts: ConditionTexts
) -> dict[str, Any]:
    """The condition's tree, each part with its value now (or the error it raised)."""
    node: dict[str, Any] = {"condition": texts(condition), "type": type(condition).__name__}
    try:
        node["value"] = bool(condition.observe(task=task, session=session))
        node["error"] = None
    except Exception as exc:
        node["value"] = None
        node["error"] = f"{type(exc).__name__}: {exc}"
    if isinstance(condition, All | AnyOf):
        node["children"] = [
            explain_condition(sub, task=task, session=session, texts=texts) for sub in condition.subconditions
        ]
    elif isinstance(condition, Not):
        node["children"] = [explain_condition(condition.condition, task=task, session=session, texts=texts)]
    else:
        node["children"] = []
    return node
