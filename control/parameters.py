"""Parameters of a task, checked before a run: against its function's signature and annotations,
or against the arguments a command task declares.

A parameter the function does not take, one Rocketry fills in itself (a ``TerminationFlag``,
the session...), or a value its annotation refuses is refused before the run (422), rather
than failing the run with ``TypeError`` or, worse, being accepted: an annotation with bounds
(``Annotated[int, Field(le=1_000_000)]``) is how a task keeps a client from making it
arbitrarily long. Values arrive as JSON and reach the function as they are, so they are
checked as pydantic checks JSON in strict mode: ``"5"`` is not an ``int``, ``1`` is a
``float``. A parameter without annotation takes any JSON value.

A command task takes only the parameters its definition declares as ``arguments`` (see
``control.engine.commands``), each of the declared type; a string that would read as an
option (``-x``) is refused, and so is a task with neither a function nor arguments.
"""

from __future__ import annotations

from control.errors import InvalidParametersError

import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints, TypeAdapter, ValidationError, create_model
from rocketry.core.parameters import BaseArgument
from rocketry.tasks import CommandTask

_SETTABLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def parameter_rule(task) -> Callable | dict[str, dict] | None:
    """What decides the parameters ``task`` takes: its function, its declared command
    arguments, or nothing (it takes none)."""
    if isinstance(task, CommandTask):
        return dict(getattr(task, "arguments", None) or {})
    return getattr(task, "func", None)


def check_parameters(takes, parameters: dict[str, Any], *, name: str) -> None:
    """Refuse parameters that ``takes`` (a function, or a command's declared arguments, see
    ``parameter_rule``) would not take, or whose values it refuses."""
    if not parameters:
        return
    if takes is None or isinstance(takes, dict):
        _check_arguments(takes or {}, parameters, name=name)
        return
    func = takes
    shape = _shape_of(func)
    if shape is None:
        return  # no signature to check against (a builtin, a command)
    settable, takes_any, model = shape
    unknown = sorted(set(parameters) - set(settable)) if not takes_any else []
    if unknown:
        raise InvalidParametersError(
            f"task '{name}' takes no parameter {', '.join(map(repr, unknown))}"
            f" (it takes: {', '.join(sorted(settable)) or 'none'})",
            field="parameters",
            value=parameters,
        )
    known = {key: value for key, value in parameters.items() if key in settable}
    try:
        model.model_validate_json(json.dumps(known), strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidParametersError(
            f"task '{name}': parameter {where}: {error['msg']}", field="parameters", value=parameters
        ) from None


_ARGUMENT_TYPES: dict[str, Any] = {
    "string": Annotated[str, StringConstraints(max_length=10_000, pattern=r"^[^-\x00][^\x00]*$|^$")],
    "integer": int,
    "number": float,
    "boolean": bool,
}


def _check_arguments(arguments: dict[str, Any], parameters: dict[str, Any], *, name: str) -> None:
    unknown = sorted(set(parameters) - set(arguments))
    if unknown:
        declared = ", ".join(arguments) or "none: declare them as the task's arguments"
        raise InvalidParametersError(
            f"task '{name}' takes no parameter {', '.join(map(repr, unknown))} (it takes: {declared})",
            field="parameters",
            value=parameters,
        )
    for key, value in parameters.items():
        spec = arguments[key]
        kind = spec["type"] if isinstance(spec, dict) else spec.type
        try:
            _argument_adapter(kind).validate_json(json.dumps(value), strict=True)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            if kind == "string" and isinstance(value, str):
                message = "a text value may not start with '-' (it would read as an option) nor hold NUL"
            raise InvalidParametersError(
                f"task '{name}': parameter {key}: {message}", field="parameters", value=parameters
            ) from None


@functools.cache
def _argument_adapter(kind: str) -> TypeAdapter:
    return TypeAdapter(_ARGUMENT_TYPES[kind])


@functools.lru_cache(maxsize=1024)
def _shape_of(func) -> tuple[list[str], bool, type] | None:
    """The names a caller may set, whether it takes any name (``**kwargs``), and a model of
    their annotations; None when ``func`` has no signature."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # an annotation that cannot be resolved is taken as "any value"
        hints = {}
    settable: list[str] = []
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        # Rocketry fills in parameters whose default is one of its argument markers.
        if parameter.kind not in _SETTABLE or isinstance(parameter.default, BaseArgument):
            continue
        settable.append(parameter.name)
        fields[parameter.name] = (hints.get(parameter.name, Any), None)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    model = create_model(
        f"{getattr(func, '__name__', 'task')}_parameters",
        __config__=ConfigDict(arbitrary_types_allowed=True),
        **fields,
    )
    return settable, takes_any, model
