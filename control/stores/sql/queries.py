"""Rocketry's reads of the log, translated: redbird query values become SQL conditions, and
records still waiting in memory are matched the way redbird matches them."""

from __future__ import annotations

from control.stores.base import LogEntry
from control.stores.sql.tables import task_log

from typing import Any

import sqlalchemy as sa
from redbird.oper import (
    Between,
    Equal,
    GreaterEqual,
    GreaterThan,
    In,
    LessEqual,
    LessThan,
    NotEqual,
    Operation,
    _Skip,
)
from redbird.utils.query import QueryMatcher


def where(query: dict[str, Any]) -> list[sa.ColumnElement]:
    """The SQL conditions of a redbird query on log records."""
    clauses = []
    for key, value in query.items():
        if key not in task_log.c:
            raise KeyError(f"log records have no field {key!r}")
        clause = _condition(task_log.c[key], value)
        if clause is not None:
            clauses.append(clause)
    return clauses


def matching(records: list[Any], query: dict[str, Any]) -> list[LogEntry]:
    """The log records among ``records`` (pending ones) that ``query`` selects."""
    if not records:
        return []
    matcher = QueryMatcher(query, value_getter=getattr)
    return [record for record in records if isinstance(record, LogEntry) and record in matcher]


def _condition(column: sa.ColumnElement, value: Any) -> sa.ColumnElement | None:
    """One redbird query value as a SQL condition (None: no condition)."""
    if not isinstance(value, Operation):
        return column == value
    match value:
        case _Skip():
            return None
        case Between():
            return column.between(value.start, value.end)
        case In():
            return column.in_(list(value.value))
        case Equal():
            return column == value.value
        case NotEqual():
            return column != value.value
        case GreaterThan():
            return column > value.value
        case LessThan():
            return column < value.value
        case GreaterEqual():
            return column >= value.value
        case LessEqual():
            return column <= value.value
    raise ValueError(f"unsupported query operation {type(value).__name__}")
