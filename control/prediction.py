"""When will a condition hold next, and why does a task (not) run now.

Predictions evaluate the condition with Rocketry itself, on a shadow session whose clock
the predictor moves from one possible change (``horizon.next_change``) to the next, with a
shadow task carrying the real task's history. A condition that depends on other tasks'
runs or on anything else the clock does not decide has no prediction (None).
"""

from __future__ import annotations

from control.actions import ACTIONS
from control.conditions import ConditionTexts
from control.engine.horizon import INF, next_change

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from rocketry import Session
from rocketry.core import BaseCondition, Task
from rocketry.core.condition.base import All, Not
from rocketry.core.condition.base import Any as AnyOf

_MAX_STEPS = 2_000
_HORIZON = 400 * 86_400  # seconds: nothing is predicted further than this


@dataclass
class _Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _noop() -> None:
    return None


@dataclass(frozen=True)
class Forecast:
    """When a condition will hold: ``times`` (None when time alone does not decide it, or
    nothing was found); ``complete`` is False when the work budget ran out first."""

    times: list[float] | None
    complete: bool = True


class History:
    """A copy of a task's latest times, so that a prediction can be made in another thread."""

    def __init__(self, task: Task | None):
        for action in ACTIONS:
            setattr(self, f"_last_{action}", getattr(task, f"_last_{action}", None))


class Predictor:
    """Owns a shadow session; used by one thread only (it moves a shared clock)."""

    def __init__(self, session):
        self._clock = _Clock()
        self._shadow = Session(config={"time_func": self._clock, "execution": "async"})
        self._task = self._shadow.create_task(func=_noop, name="prediction", execution="async")
        self._timezone = session.config.timezone
        self._shadow.config.timezone = self._timezone

    def next_runs(
        self,
        condition: BaseCondition,
        *,
        like: Task | History | None,
        now: float,
        count: int,
        deadline: float = math.inf,
    ) -> Forecast:
        """Up to ``count`` times the condition will hold, each run assumed to succeed at
        once, found before ``deadline`` (``time.monotonic()``; each step is a check of the
        condition, so the deadline may be passed by one step)."""
        shadow = self._task
        for action in ACTIONS:
            setattr(shadow, f"_last_{action}", getattr(like, f"_last_{action}", None))
        times: list[float] = []
        # Never before the task's own latest record: Rocketry reads the log instead of its
        # cached times when a record looks newer than "now".
        known = [getattr(shadow, f"_last_{action}") for action in ACTIONS]
        moment = max([now, *(t for t in known if t is not None)])
        complete = True
        for _ in range(_MAX_STEPS):
            if moment - now > _HORIZON:
                break
            if time.monotonic() > deadline:
                complete = False
                break
            self._clock.now = moment
            try:
                holds = self._holds(condition, deadline)
            except _OutOfTime:
                complete = False
                break
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
                moment_next = self._next_change(condition, moment, deadline)
            except _OutOfTime:
                complete = False
                break
            except Exception:
                break
            if moment_next == INF or moment_next <= moment or math.isnan(moment_next):
                break  # only an event (or something the clock does not decide) can change it
            moment = moment_next
        return Forecast(times or None, complete)

    # Rocketry's own evaluation, part by part, so that the deadline is looked at between two
    # parts (a part costs at most a few milliseconds) rather than once per whole condition.

    def _holds(self, condition: BaseCondition, deadline: float) -> bool:
        if isinstance(condition, All):
            return all(self._holds(sub, deadline) for sub in condition.subconditions)
        if isinstance(condition, AnyOf):
            return any(self._holds(sub, deadline) for sub in condition.subconditions)
        if isinstance(condition, Not):
            return not self._holds(condition.condition, deadline)
        if time.monotonic() > deadline:
            raise _OutOfTime
        return bool(condition.observe(task=self._task, session=self._shadow))

    def _next_change(self, condition: BaseCondition, now: float, deadline: float) -> float:
        if isinstance(condition, All | AnyOf):
            return min(
                (self._next_change(sub, now, deadline) for sub in condition.subconditions), default=INF
            )
        if isinstance(condition, Not):
            return self._next_change(condition.condition, now, deadline)
        if time.monotonic() > deadline:
            raise _OutOfTime
        return next_change(condition, task=self._task, session=self._shadow, now=now)


class _OutOfTime(Exception):
    """The deadline of a prediction passed."""


class BackgroundPredictor:
    """Predictions too costly for the event loop, made one at a time in a thread of their
    own, with a shadow session of their own, each within its deadline. (The thread shares
    the interpreter lock, so the loop is slowed by at most a switch interval, never held.)"""

    def __init__(self, session):
        self._session = session
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prediction")
        self._predictor: Predictor | None = None  # made in the worker thread, used only there

    async def next_runs(
        self, condition: BaseCondition, *, like: History | None, now: float, count: int, deadline: float
    ) -> Forecast:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._predict, condition, like, now, count, deadline
        )

    def _predict(self, condition, like, now, count, deadline) -> Forecast:
        if time.monotonic() > deadline:
            return Forecast(None, complete=False)  # waited its turn past its deadline
        if self._predictor is None:
            self._predictor = Predictor(self._session)
        return self._predictor.next_runs(condition, like=like, now=now, count=count, deadline=deadline)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


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
