"""Rocketry conditions to and from text, so the API can show a condition and take one back."""

from control.errors import InvalidConditionError

from collections.abc import Iterator

from rocketry.conditions import (
    DependFailure,
    DependFinish,
    DependSuccess,
    IsPeriod,
    TaskExecutable,
    TaskRunnable,
    TaskRunning,
    TaskStarted,
)
from rocketry.conditions.api import TimeCondWrapper
from rocketry.core.condition import AlwaysFalse, AlwaysTrue, BaseCondition
from rocketry.core.condition.base import All, Any, Not
from rocketry.parse import parse_condition as _parse
from rocketry.time import Cron, TimeDelta, TimeOfDay, TimeOfHour, TimeOfMinute, TimeOfMonth, TimeOfWeek

MAX_LENGTH = 1000
# Bounds on what one condition may cost. Parsing grows with nesting (490 nested parentheses
# took 0.5 s), and checking or predicting grows with the number of parts (a check of a
# `cron` part costs about 2 ms; 52 of them joined by `|` held the loop for seconds).
MAX_DEPTH = 8
MAX_PARTS = 8

_CYCLE_WORDS = {
    TimeOfMinute: "minutely",
    TimeOfHour: "hourly",
    TimeOfDay: "daily",
    TimeOfWeek: "weekly",
    TimeOfMonth: "monthly",
}
_PERIOD_WORDS = {
    TimeOfMinute: "minute",
    TimeOfHour: "hour",
    TimeOfDay: "day",
    TimeOfWeek: "week",
    TimeOfMonth: "month",
}


def parse_condition(text: str, *, session, field: str = "start_cond") -> BaseCondition:
    """Parse ``text`` as Rocketry would, raising ``InvalidConditionError`` with its reason."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidConditionError("condition is empty", field=field, value=text)
    if len(text) > MAX_LENGTH:
        raise InvalidConditionError(
            f"condition is longer than {MAX_LENGTH} characters", field=field, value=text
        )
    depth, parts = _shape(text)
    if depth > MAX_DEPTH:
        raise InvalidConditionError(
            f"condition nests parentheses {depth} deep; at most {MAX_DEPTH}", field=field, value=text
        )
    if parts > MAX_PARTS:
        raise InvalidConditionError(
            f"condition joins {parts} parts with & and |; at most {MAX_PARTS}", field=field, value=text
        )
    try:
        condition = _parse(text, session=session)
    except Exception as exc:  # Rocketry's parser raises ParserError, KeyError, ValueError...
        raise InvalidConditionError(_reason(text, exc), field=field, value=text) from exc
    if not isinstance(condition, BaseCondition):
        raise InvalidConditionError(f"{text!r} is not a condition", field=field, value=text)
    return condition


def _shape(text: str) -> tuple[int, int]:
    """How deep parentheses nest, and how many parts ``&`` and ``|`` join, outside quotes:
    counted on the text, before the parser spends any time on it."""
    depth = deepest = 0
    parts = 1
    quote = None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
        elif char in "&|":
            parts += 1
    return deepest, parts


def _reason(text: str, exc: Exception) -> str:
    detail = str(exc).strip("'\"") or type(exc).__name__
    if type(exc).__name__ == "ParserError":
        return f"cannot parse condition {text!r}: {detail}"
    return f"cannot parse condition {text!r}: {type(exc).__name__}: {detail}"


def condition_text(condition: BaseCondition, *, session) -> str:
    """A string that parses back to ``condition``.

    Conditions parsed from text keep that text. Conditions built in code (``daily.after(...)``)
    print in a form Rocketry cannot parse, so candidate phrasings are generated and the first
    that parses back to an equal condition is returned; ``str(condition)`` is the fallback.
    """
    text = getattr(condition, "_str", None)
    if isinstance(text, str):
        return text
    if type(condition) in (AlwaysTrue, AlwaysFalse):
        return "true" if isinstance(condition, AlwaysTrue) else "false"
    for candidate in _candidates(condition, session):
        if _round_trips(candidate, condition, session):
            return candidate
    return str(condition)


def _round_trips(text: str, condition: BaseCondition, session) -> bool:
    try:
        return _parse(text, session=session) == condition
    except Exception:
        return False


def _candidates(condition: BaseCondition, session) -> Iterator[str]:
    match condition:
        case AlwaysTrue():
            yield "true"
        case AlwaysFalse():
            yield "false"
        case All() | Any():
            joiner = " & " if isinstance(condition, All) else " | "
            parts = [_operand(sub, session) for sub in condition.subconditions]
            yield joiner.join(parts)
        case Not():
            yield f"~{_operand(condition.condition, session)}"
        case TimeCondWrapper():
            # Bare ``daily``, ``weekly``... used as a condition.
            yield from ("secondly", *_CYCLE_WORDS.values())
        case TaskStarted(task=None, period=TimeDelta() as period):
            # ``every 10 minutes`` is "the task has not started in the past 10 minutes".
            yield f"every {_duration(period.past.total_seconds())}"
        case TaskExecutable(period=Cron() as period) | TaskRunnable(period=Cron() as period):
            yield f"cron {_cron(period)}"
        case TaskExecutable(period=period) | TaskRunnable(period=period) if type(period) in _CYCLE_WORDS:
            yield from _spans(_CYCLE_WORDS[type(period)], period)
        case IsPeriod(period=period) if type(period) in _PERIOD_WORDS:
            yield from _spans(f"time of {_PERIOD_WORDS[type(period)]}", period)
        case DependSuccess():
            yield f"after task '{condition.depend_task}'"
        case DependFailure():
            yield f"after task '{condition.depend_task}' failed"
        case DependFinish():
            yield f"after task '{condition.depend_task}' finished"
        case TaskRunning(period=None):
            yield f"task '{condition.task}' is running"


def _operand(condition: BaseCondition, session) -> str:
    text = condition_text(condition, session=session)
    if isinstance(condition, All | Any) and not text.startswith("("):
        return f"({text})"
    return text


def _spans(prefix: str, period) -> Iterator[str]:
    start, end = period._start_orig, period._end_orig
    if start is None and end is None:
        yield prefix
    if start is not None and end is not None:
        yield f"{prefix} between {start} and {end}"
    if start is not None:
        yield f"{prefix} after {start}"
        yield f"{prefix} on {start}"
        yield f"{prefix} starting {start}"
    if end is not None:
        yield f"{prefix} before {end}"


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} seconds"


def _cron(period: Cron) -> str:
    return " ".join(
        str(getattr(period, part)) for part in ("minute", "hour", "day_of_month", "month", "day_of_week")
    )


class ConditionTexts:
    """``condition_text`` with a memory: working out the text of a condition built in code
    means parsing candidates, which is too slow to repeat for every task listing."""

    def __init__(self, session, *, size: int = 10_000):
        self._session = session
        self._size = size
        self._texts: dict[int, tuple[BaseCondition, str]] = {}

    def __call__(self, condition: BaseCondition) -> str:
        text = getattr(condition, "_str", None)
        if isinstance(text, str):
            return text
        known = self._texts.get(id(condition))
        if known is not None and known[0] is condition:
            return known[1]
        if len(self._texts) >= self._size:
            self._texts.clear()
        text = condition_text(condition, session=self._session)
        self._texts[id(condition)] = (condition, text)
        return text


def canonical_text(condition: BaseCondition, *, session) -> str:
    """The condition written the way this service writes it (whatever spacing or synonyms the
    original text used); the original text if no form of ours parses back to it."""
    for candidate in _candidates(condition, session):
        if _round_trips(candidate, condition, session):
            return candidate
    return condition_text(condition, session=session)
