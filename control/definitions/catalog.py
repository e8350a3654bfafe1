"""TaskCatalog: where each task comes from, and how stored definitions become live tasks.

A task defined in code keeps its code definition as the base: the catalog remembers it at
start, and an edit is stored as the fields that differ. A task created through the API is
stored whole. At start the catalog re-applies both; a definition that no longer loads is
kept aside as broken, with the reason, and the rest starts.
"""

from __future__ import annotations

from control.conditions import ConditionTexts, parse_condition
from control.definitions.model import EDITABLE, TaskDefinition, TaskFields
from control.engine.commands import DeclaredCommandTask
from control.engine.loop import ControlScheduler
from control.errors import InvalidDefinitionError, InvalidInputError, TaskStateError
from control.parameters import check_parameters, parameter_rule
from control.stores.base import StoredDefinition
from control.targets import resolve_function

import inspect
import logging
import shlex
from dataclasses import dataclass, field
from typing import Any

from rocketry.core import Task
from rocketry.core.parameters import Parameters

logger = logging.getLogger(__name__)


@dataclass
class Broken:
    name: str
    origin: str
    reason: str
    fields: dict[str, Any]


@dataclass
class _CodeBase:
    """A code task's values as its code set them, to return to."""

    values: dict[str, Any]
    parameters: Parameters
    fields: dict[str, Any]  # the same, as the API shows them


@dataclass
class TaskCatalog:
    session: Any
    scheduler: ControlScheduler
    allowed_packages: list[str]
    commands_enabled: bool
    texts: ConditionTexts = field(init=False)
    origins: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, TaskDefinition] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    broken: dict[str, Broken] = field(default_factory=dict)
    _bases: dict[str, _CodeBase] = field(default_factory=dict)

    def __post_init__(self):
        self.texts = ConditionTexts(self.session)

    # -- start -------------------------------------------------------------------------

    def adopt_code_tasks(self) -> None:
        """Remember every task now in the session as defined in code, with its values."""
        for task in self.session.tasks:
            self.origins[task.name] = "code"
            self._bases[task.name] = _CodeBase(
                values={name: getattr(task, name) for name in _TASK_ATTRIBUTES},
                parameters=Parameters(task.parameters),
                fields=self.fields_of(task),
            )

    def restore(self, stored: list[StoredDefinition]) -> None:
        """Apply stored definitions; those that fail are kept in ``broken`` with the reason."""
        for item in stored:
            try:
                if item.origin == "runtime":
                    self.create(TaskDefinition.model_validate(item.fields))
                elif item.name not in self.origins or self.origins[item.name] != "code":
                    raise InvalidDefinitionError(
                        "its task is no longer defined in code", field="name", value=item.name
                    )
                else:
                    fields = TaskFields.model_validate(item.fields).changes()
                    self.apply(self.session[item.name], fields)
                    base = self._bases[item.name].fields
                    self.overrides[item.name] = {k: v for k, v in fields.items() if v != base.get(k)}
            except Exception as exc:  # any failure: the service starts without this definition
                reason = _reason(exc)
                self.broken[item.name] = Broken(item.name, item.origin, reason, item.fields)
                logger.error("Stored definition of task %r not loaded: %s", item.name, reason)

    # -- reading -----------------------------------------------------------------------

    def origin(self, name: str) -> str:
        return self.origins.get(name, "code")

    def fields_of(self, task: Task) -> dict[str, Any]:
        """The task's editable fields as JSON values."""
        return {
            "start_cond": self.texts(task.start_cond),
            "end_cond": self.texts(task.end_cond),
            "execution": task.get_execution(),
            "timeout": task.timeout.total_seconds() if task.timeout is not None else None,
            "priority": task.priority,
            "parameters": self.api_parameters(task.name),
            "description": task.description,
            "disabled": task.disabled,
            "overlap": self.scheduler.overlap.effective(task),
        }

    def api_parameters(self, name: str) -> dict[str, Any]:
        if name in self.runtime:
            return dict(self.runtime[name].parameters)
        return dict(self.overrides.get(name, {}).get("parameters") or {})

    def overridden(self, name: str) -> list[str]:
        return sorted(self.overrides.get(name, {}))

    def target(self, task: Task) -> str | None:
        """What the task runs: ``module:function`` or the command."""
        definition = self.runtime.get(task.name)
        if definition is not None:
            if definition.func is not None:
                return definition.func
            command = definition.command
            return command if isinstance(command, str) else shlex.join(command)
        func = getattr(task, "func", None)
        if func is not None:
            return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', '?')}"
        return None

    def stored_form(self, name: str) -> StoredDefinition | None:
        """What the store keeps for ``name``: the whole runtime definition, or a code task's
        edited fields (None when it has none)."""
        if name in self.runtime:
            return StoredDefinition(name, "runtime", self.runtime[name].model_dump(mode="json"))
        if self.overrides.get(name):
            return StoredDefinition(name, "code", dict(self.overrides[name]))
        return None

    # -- changing ----------------------------------------------------------------------

    def create(self, definition: TaskDefinition) -> Task:
        """Create a task in the session from a runtime definition (checked first)."""
        name = definition.name
        if name in self.session:
            raise TaskStateError(f"Task '{name}' already exists")
        execution, make = self._runner(definition)
        values = self._checked(
            definition.model_dump(include=set(EDITABLE), exclude_none=False) | {"execution": execution},
            takes=make.get("func", make.get("arguments")),
        )
        conditions = {key: values.pop(key) for key in ("start_cond", "end_cond")}
        overlap = values.pop("overlap")
        parameters = values.pop("parameters")
        fields = dict(
            name=name,
            **make,
            **conditions,
            execution=execution,
            timeout=values["timeout"],
            priority=values["priority"],
            description=values["description"],
            disabled=values["disabled"],
            parameters=Parameters(parameters),
        )
        if "command" in make:
            task = DeclaredCommandTask(session=self.session, **fields)
        else:
            task = self.session.create_task(**fields)
        self.scheduler.set_overlap(task, overlap)
        self.origins[name] = "runtime"
        self.runtime[name] = definition.model_copy(update={"execution": execution})
        self.broken.pop(name, None)
        return task

    def check(self, definition: TaskDefinition) -> None:
        """Raise what ``create`` would, without creating anything."""
        execution, make = self._runner(definition)
        self._checked(
            definition.model_dump(include=set(EDITABLE)) | {"execution": execution},
            takes=make.get("func", make.get("arguments")),
        )

    def check_fields(self, task: Task, changes: dict[str, Any]) -> None:
        """Raise what ``apply`` would, without changing anything."""
        self._checked(dict(changes), takes=parameter_rule(task), task=task)

    def update(self, task: Task, changes: dict[str, Any]) -> None:
        """Apply an edit and remember it: in the runtime definition, or as an override of
        the code definition."""
        self.apply(task, changes)
        name = task.name
        if name in self.runtime:
            self.runtime[name] = self.runtime[name].model_copy(update=changes)
        else:
            # A field set back to its code value is no longer an override of it.
            base = self._bases[name].fields
            merged = {**self.overrides.get(name, {}), **changes}
            self.overrides[name] = {key: value for key, value in merged.items() if value != base.get(key)}

    def reset(self, task: Task) -> None:
        """Back to the code definition."""
        base = self._bases.get(task.name)
        if base is None:
            raise TaskStateError(f"Task '{task.name}' was created through the API: it has no code definition")
        for attribute, value in base.values.items():
            setattr(task, attribute, value)
        task.parameters = Parameters(base.parameters)
        self.scheduler.set_overlap(task, base.fields["overlap"])
        self.overrides.pop(task.name, None)

    def save_point(self, name: str) -> tuple:
        """Everything ``roll_back`` needs to undo a change to ``name``."""
        task = self.session[name]
        overrides = self.overrides.get(name)
        return (
            {attribute: getattr(task, attribute) for attribute in _TASK_ATTRIBUTES},
            Parameters(task.parameters),
            self.scheduler.overlap.effective(task),
            self.runtime.get(name),
            dict(overrides) if overrides is not None else None,
        )

    def roll_back(self, task: Task, saved: tuple) -> None:
        attributes, parameters, overlap, runtime, overrides = saved
        for attribute, value in attributes.items():
            setattr(task, attribute, value)
        task.parameters = parameters
        self.scheduler.set_overlap(task, overlap)
        if runtime is not None:
            self.runtime[task.name] = runtime
        if overrides is None:
            self.overrides.pop(task.name, None)
        else:
            self.overrides[task.name] = overrides

    def remove(self, task: Task) -> None:
        if self.origin(task.name) == "code":
            raise TaskStateError(
                f"Task '{task.name}' is defined in code and would return at the next start; "
                "disable it, or remove it from the code"
            )
        self.session.remove_task(task)
        self.runtime.pop(task.name, None)
        self.origins.pop(task.name, None)
        self.scheduler.forget(task.name)

    def apply(self, task: Task, changes: dict[str, Any]) -> None:
        """Check every value, then set them all: a bad value changes nothing."""
        values = self._checked(dict(changes), takes=parameter_rule(task), task=task)
        overlap = values.pop("overlap", None)
        parameters = values.pop("parameters", None)
        for attribute, value in values.items():
            setattr(task, attribute, value)
        if "parameters" in changes:
            base = self._bases.get(task.name)
            task.parameters = (Parameters(base.parameters) if base else Parameters()) | Parameters(
                parameters or {}
            )
        if overlap is not None:
            self.scheduler.set_overlap(task, overlap)

    # -- checks ------------------------------------------------------------------------

    def _checked(self, values: dict[str, Any], *, takes, task: Task | None = None) -> dict[str, Any]:
        """``values`` with their conditions parsed, once every value is known to be allowed
        for a task whose parameters ``takes`` decides (its function, or a command's
        declared arguments; see ``control.parameters``)."""
        for key in ("start_cond", "end_cond"):
            if key in values and values[key] is not None:
                values[key] = parse_condition(values[key], session=self.session, field=key)
        execution = values.get("execution")
        if execution == "async" and not (callable(takes) and inspect.iscoroutinefunction(takes)):
            raise InvalidInputError(
                "only a coroutine function may run as 'async' (anything else would block the "
                "event loop); use thread or process",
                field="execution",
                value=execution,
            )
        if execution == "process" and getattr(takes, "__name__", None) == "<lambda>":
            raise InvalidInputError("a lambda cannot run in a process", field="execution", value=execution)
        if values.get("parameters"):
            check_parameters(takes, values["parameters"], name=task.name if task else "the task")
        return values

    def _runner(self, definition: TaskDefinition) -> tuple[str, dict[str, Any]]:
        """The execution and the constructor arguments of what the definition runs."""
        if definition.command is not None:
            if not self.commands_enabled:
                raise InvalidDefinitionError(
                    "command tasks are disabled (they run any command on this machine); "
                    "set SCHEDULER_COMMAND_TASKS=true to allow them",
                    field="command",
                    value=definition.command,
                )
            command = definition.command
            argv = shlex.split(command) if isinstance(command, str) else list(command)
            arguments = {key: spec.model_dump() for key, spec in definition.arguments.items()}
            return definition.execution or "process", {"command": argv, "arguments": arguments}
        func = resolve_function(definition.func, allowed_packages=self.allowed_packages)
        default = "async" if inspect.iscoroutinefunction(func) else "thread"
        return definition.execution or default, {"func": func}


_TASK_ATTRIBUTES = ("start_cond", "end_cond", "execution", "timeout", "priority", "description", "disabled")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidInputError):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc).strip()}".rstrip(": ")
