"""When can a Rocketry condition next change value, if nothing but time passes?

The scheduler uses this to skip conditions that cannot have changed. Every answer is a
lower bound: checking a condition earlier than needed only costs time, checking it later
would start a task late, so whatever cannot be bounded is answered with ``now`` (check it
every cycle, as Rocketry does). The decision itself is always Rocketry's own evaluation.

What time alone cannot change, records can: a condition on a task's runs changes when
that task logs a record or stops running. ``referenced_tasks`` names those tasks, and the
scheduler re-checks the condition on those events, so such leaves answer ``INF`` here.
"""

from __future__ import annotations

import datetime
import math

from rocketry.conditions import (
    IsPeriod,
    Retry,
    TaskExecutable,
    TaskFailed,
    TaskFinished,
    TaskInacted,
    TaskRunnable,
    TaskRunning,
    TaskStarted,
    TaskSucceeded,
    TaskTerminated,
)
from rocketry.conditions.api import TimeCondWrapper
from rocketry.conditions.task.utils import DependMixin, TaskStatusMixin
from rocketry.core.condition import AlwaysFalse, AlwaysTrue, BaseCondition
from rocketry.core.condition.base import All, Any, Not
from rocketry.core.time.base import TimeDelta, TimePeriod
from rocketry.time import TimeOfDay, TimeOfHour, TimeOfMinute, TimeOfSecond

INF = math.inf
# Rocketry compares datetimes rounded to the microsecond, so a float time within a few
# microseconds of a boundary may still fall on it: "an instant later" is 10 µs.
_INSTANT = 1e-5
_RESOLUTION = datetime.timedelta(microseconds=1)
# Periods whose intervals repeat with a fixed length, where Rocketry's arithmetic holds.
_EXACT_SCOPES = (TimeOfSecond, TimeOfMinute, TimeOfHour, TimeOfDay)

_EXECUTABLE_ACTIONS = ("success", "inaction", "fail", "terminate")
_STATUS_CLASSES = (TaskStarted, TaskSucceeded, TaskFailed, TaskFinished, TaskTerminated, TaskInacted)


def next_change(condition: BaseCondition, *, task, session, now: float) -> float:
    """Earliest epoch time after ``now`` at which ``condition`` may change value if no
    task logs anything; ``now`` when that cannot be known."""
    match condition:
        case AlwaysTrue() | AlwaysFalse():
            return INF
        case All() | Any():
            return min(
                (next_change(sub, task=task, session=session, now=now) for sub in condition.subconditions),
                default=INF,
            )
        case Not():
            return next_change(condition.condition, task=task, session=session, now=now)
        case TimeCondWrapper():
            return next_change(condition.get_cond(), task=task, session=session, now=now)
        case IsPeriod():
            return _boundary(condition.period, session, now)
        case TaskExecutable() | TaskRunnable():
            actions = _EXECUTABLE_ACTIONS if isinstance(condition, TaskExecutable) else ("run",)
            if isinstance(condition, TaskExecutable) and condition.retries:
                # Failures are counted in the window, not only the latest one.
                if isinstance(condition.period, TimeDelta):
                    return now
            return _period_change(condition, task, actions, session, now)
        case TaskStatusMixin() if isinstance(condition, _STATUS_CLASSES):
            actions = condition._action if isinstance(condition._action, list) else [condition._action]
            if condition.period is None:
                return INF  # counts over the whole history: only records change it
            if isinstance(condition.period, TimeDelta) and condition._comps != {"__eq__": 0}:
                return now  # a count in a sliding window depends on every record in it
            return _period_change(condition, task, actions, session, now)
        case DependMixin() | TaskRunning() | Retry():
            return INF
    return now


def referenced_tasks(condition: BaseCondition, *, own: str) -> set[str]:
    """Names of the tasks whose records (or end of running) may change ``condition``."""
    names = {own}
    stack = [condition]
    while stack:
        cond = stack.pop()
        match cond:
            case All() | Any():
                stack.extend(cond.subconditions)
            case Not():
                stack.append(cond.condition)
            case DependMixin():
                names.add(_name(cond.depend_task))
                if cond.task is not None:
                    names.add(_name(cond.task))
            case _:
                task = getattr(cond, "task", None)
                if task is not None:
                    names.add(_name(task))
    return names


def _name(task) -> str:
    return getattr(task, "name", task)


def _subject(condition, task, session):
    """The task a task-status condition is about: its own ``task`` or the evaluated one."""
    if condition.task is None:
        return task
    return session[_name(condition.task)]


def _period_change(condition, task, actions, session, now: float) -> float:
    if isinstance(condition.period, TimeDelta):
        return _aging(condition.period, _subject(condition, task, session), actions, now)
    return _boundary(condition.period, session, now)


def _aging(period: TimeDelta, subject, actions, now: float) -> float:
    """A record in a sliding window of the past ``period.past`` leaves it at record + past."""
    if period.future:
        return now
    past = period.past.total_seconds()
    times = [getattr(subject, f"_last_{action}", None) for action in actions]
    # At exactly record + past Rocketry still counts the record (even a few microseconds
    # past it, after rounding); it leaves right after.
    leaving = [t + past for t in times if t is not None and t + past > now - _INSTANT]
    if not leaving:
        return INF
    return max(min(leaving), now + _INSTANT)


def _boundary(period: TimePeriod, session, now: float) -> float:
    """The next start or end of one of ``period``'s intervals after ``now``."""
    try:
        current = session._format_timestamp(now)
        # Exactly at a boundary, Rocketry still sees the interval that just ended (its
        # spans are rolled back from now); the value changes an instant later.
        before = period.rollforward(current - _RESOLUTION)
        if current in (before.left, before.right):
            return now + _INSTANT
        interval = period.rollforward(current)
        moment = interval.left if interval.left > current else interval.right
        if not isinstance(period, _EXACT_SCOPES):
            # Rocketry's forward arithmetic assumes 31-day months (``monthly`` rolls from
            # 1 February to 4 March), while its own checks roll back correctly. Checking
            # again each midnight bounds such an error to the day it would start in.
            midnight = (current + datetime.timedelta(days=1)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            moment = min(moment, midnight)
        return _epoch(moment, current) if moment > current else now
    except Exception:  # an exotic period: fall back to checking every cycle
        return now


def _epoch(moment: datetime.datetime, like: datetime.datetime) -> float:
    if moment.tzinfo is None and like.tzinfo is not None:
        moment = moment.replace(tzinfo=like.tzinfo)
    return moment.timestamp()
