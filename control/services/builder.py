"""TaskBuilder: how a definition becomes a Rocketry task, and how field values are checked and set.

Every value is checked before any is set (a bad value changes nothing): conditions parse
within their bounds, ``async`` only for a coroutine function, parameters fit what the task
takes (``control.parameters``), and what a runtime task runs is a function an allowed
package defines (``control.targets``) or a command, when commands are allowed.
"""

from __future__ import annotations

from control.conditions import parse_condition
from control.engine.commands import DeclaredCommandTask
from control.engine.loop import ControlScheduler
from control.errors import InvalidDefinitionError, InvalidInputError
from control.parameters import check_parameters, parameter_rule
from control.schemas.tasks import EDITABLE, TaskDefinition
from control.targets import resolve_function

import inspect
import shlex
from typing import Any

from rocketry.core import Task
from rocketry.core.parameters import Parameters

# The Task attributes an edit sets directly (the others: parameters, overlap).
ATTRIBUTES = ("start_cond", "end_cond", "execution", "timeout", "priority", "description", "disabled")


class TaskBuilder:
    def __init__(self, session, scheduler: ControlScheduler, *, allowed_packages: list[str], commands: bool):
        self.session = session
        self.scheduler = scheduler
        self.allowed_packages = allowed_packages
        self.commands = commands

    def build(self, definition: TaskDefinition) -> tuple[Task, TaskDefinition]:
        """A new task in the session, and the definition as it is kept (with its execution)."""
        execution, make = self._runner(definition)
        values = self._checked(
            definition.model_dump(include=set(EDITABLE), exclude_none=False) | {"execution": execution},
            takes=make.get("func", make.get("arguments")),
        )
        fields = dict(
            name=definition.name,
            **make,
            start_cond=values["start_cond"],
            end_cond=values["end_cond"],
            execution=execution,
            timeout=values["timeout"],
            priority=values["priority"],
            description=values["description"],
            disabled=values["disabled"],
            parameters=Parameters(values["parameters"]),
        )
        self._watch_the_broker(execution)
        if "command" in make:
            task = DeclaredCommandTask(session=self.session, **fields)
        else:
            task = self.session.create_task(**fields)
        self.scheduler.set_overlap(task, values["overlap"])
        return task, definition.model_copy(update={"execution": execution})

    def check(self, definition: TaskDefinition) -> None:
        """Raise what ``build`` would, without building anything."""
        execution, make = self._runner(definition)
        self._checked(
            definition.model_dump(include=set(EDITABLE)) | {"execution": execution},
            takes=make.get("func", make.get("arguments")),
        )

    def check_fields(self, task: Task, changes: dict[str, Any]) -> None:
        """Raise what ``apply`` would, without changing anything."""
        self._checked(dict(changes), takes=parameter_rule(task), task=task)

    def apply(self, task: Task, changes: dict[str, Any], *, base_parameters: Parameters | None) -> None:
        """Check every value, then set them all. Parameters given replace those set before;
        a code task keeps its code's own (``base_parameters``) under them."""
        values = self._checked(dict(changes), takes=parameter_rule(task), task=task)
        self._watch_the_broker(values.get("execution"))
        overlap = values.pop("overlap", None)
        parameters = values.pop("parameters", None)
        for attribute, value in values.items():
            setattr(task, attribute, value)
        if "parameters" in changes:
            task.parameters = Parameters(base_parameters or {}) | Parameters(parameters or {})
        if overlap is not None:
            self.scheduler.set_overlap(task, overlap)

    def _watch_the_broker(self, execution: str | None) -> None:
        """A task runs on Celery from now: reach the broker (``/health`` says if it cannot)."""
        if execution == "celery":
            self.scheduler.remote.connect()

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
        if execution == "celery" and not (callable(takes) and "<" not in getattr(takes, "__qualname__", "<")):
            raise InvalidInputError(
                "only a function a worker can import (defined at the top of a module of an "
                "allowed package) may run on Celery; commands and lambdas cannot",
                field="execution",
                value=execution,
            )
        if values.get("parameters"):
            check_parameters(takes, values["parameters"], name=task.name if task is not None else "the task")
        return values

    def _runner(self, definition: TaskDefinition) -> tuple[str, dict[str, Any]]:
        """The execution and the constructor arguments of what the definition runs."""
        if definition.command is not None:
            if not self.commands:
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
