"""TaskCatalog: where each task comes from, what is kept of it, and the one way to change it.

A task defined in code keeps its code definition as the base: the catalog remembers it at
start, and an edit is kept as the fields that differ (``overrides``). A task created
through the API is kept whole (``runtime``). At start the catalog applies both again; a
definition that no longer loads is kept aside as broken, with the reason, and the rest
starts.

Every change goes through ``change``: under one lock it looks the task up, keeps a restore
point, lets the caller change the task, works out what changed, stores the definition with
a version, and on any failure puts everything back; then it wakes the scheduler. The
catalog is the only code that adds, removes or sets live tasks.
"""

from __future__ import annotations

from control.actions import Change
from control.conditions import ConditionTexts
from control.engine.loop import ControlScheduler
from control.errors import InvalidDefinitionError, InvalidInputError, TaskNotFoundError, TaskStateError
from control.events import EventHub
from control.schemas.tasks import EDITABLE, TaskDefinition, TaskFields
from control.services.builder import ATTRIBUTES, TaskBuilder
from control.services.common import Actor, store_call
from control.stores.base import DefinitionStore, StoredDefinition, Version

import asyncio
import contextlib
import logging
import shlex
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
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
class _SavePoint:
    """Everything a failed change puts back."""

    task: Task | None
    attributes: dict[str, Any]
    parameters: Parameters | None
    overlap: str | None
    runtime: TaskDefinition | None
    overrides: dict[str, Any] | None
    origin: str | None


class TaskChange:
    """What the block of ``TaskCatalog.change`` may do to its task."""

    def __init__(self, catalog: TaskCatalog, name: str):
        self._catalog = catalog
        self.name = name

    @property
    def task(self) -> Task | None:
        """The live task (None when there is none, before a create)."""
        return self._catalog.session.tasks.find(self.name)

    def require(self) -> Task:
        task = self.task
        if task is None:
            raise TaskNotFoundError(self.name)
        return task

    def update(self, changes: dict[str, Any]) -> None:
        """Apply an edit and keep it: in the runtime definition, or as an override of the
        code definition (a field set back to its code value is no longer one)."""
        catalog, task = self._catalog, self.require()
        base = catalog.bases.get(self.name)
        catalog.builder.apply(task, changes, base_parameters=base.parameters if base else None)
        if self.name in catalog.runtime:
            catalog.runtime[self.name] = catalog.runtime[self.name].model_copy(update=changes)
        else:
            merged = {**catalog.overrides.get(self.name, {}), **changes}
            catalog.overrides[self.name] = {k: v for k, v in merged.items() if v != base.fields.get(k)}

    def reset(self) -> None:
        """Back to the code definition."""
        catalog, task = self._catalog, self.require()
        base = catalog.bases.get(self.name)
        if base is None:
            raise TaskStateError(f"Task '{self.name}' was created through the API: it has no code definition")
        for attribute, value in base.values.items():
            setattr(task, attribute, value)
        task.parameters = Parameters(base.parameters)
        catalog.scheduler.set_overlap(task, base.fields["overlap"])
        catalog.overrides.pop(self.name, None)

    def create(self, definition: TaskDefinition) -> None:
        """Make the runtime task ``definition`` describes (its name must be free)."""
        if self.task is not None:
            raise TaskStateError(f"Task '{self.name}' already exists")
        self._catalog.add(definition)

    def remove(self) -> None:
        """Remove a task created through the API (one defined in code would come back)."""
        catalog, task = self._catalog, self.require()
        if catalog.origin(self.name) == "code":
            raise TaskStateError(
                f"Task '{self.name}' is defined in code and would return at the next start; "
                "disable it, or remove it from the code"
            )
        catalog.discard(task)


class TaskCatalog:
    def __init__(
        self,
        session,
        scheduler: ControlScheduler,
        *,
        builder: TaskBuilder,
        definitions: DefinitionStore,
        events: EventHub,
    ):
        self.session = session
        self.scheduler = scheduler
        self.builder = builder
        self.texts = ConditionTexts(session)
        self.origins: dict[str, str] = {}
        self.runtime: dict[str, TaskDefinition] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.broken: dict[str, Broken] = {}
        self.bases: dict[str, _CodeBase] = {}
        # Changes are applied and stored one at a time, so the store's order is the session's.
        self.lock = asyncio.Lock()
        self.changed: list[Callable[[str], None]] = []  # told the name of every task changed
        self._definitions = definitions
        self._events = events

    # -- start ---------------------------------------------------------------------------

    def adopt_code_tasks(self) -> None:
        """Remember every task now in the session as defined in code, with its values."""
        for task in self.session.tasks:
            self.origins[task.name] = "code"
            self.bases[task.name] = _CodeBase(
                values={name: getattr(task, name) for name in ATTRIBUTES},
                parameters=Parameters(task.parameters),
                fields=self.fields_of(task),
            )

    def restore(self, stored: list[StoredDefinition]) -> None:
        """Apply stored definitions; those that fail are kept in ``broken`` with the reason."""
        for item in stored:
            try:
                if item.origin == "runtime":
                    self.add(TaskDefinition.model_validate(item.fields))
                elif self.origins.get(item.name) != "code":
                    raise InvalidDefinitionError(
                        "its task is no longer defined in code", field="name", value=item.name
                    )
                else:
                    TaskChange(self, item.name).update(TaskFields.model_validate(item.fields).changes())
            except Exception as exc:  # any failure: the service starts without this definition
                reason = str(exc) if isinstance(exc, InvalidInputError) else _reason(exc)
                self.broken[item.name] = Broken(item.name, item.origin, reason, item.fields)
                logger.error("Stored definition of task %r not loaded: %s", item.name, reason)

    # -- reading -------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return name in self.session

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

    def check_definition(self, definition: TaskDefinition) -> None:
        """Raise what creating ``definition`` would, without creating anything."""
        self.builder.check(definition)

    def check_edit(self, name: str, changes: dict[str, Any]) -> None:
        """Raise what editing ``name`` with ``changes`` would, without changing anything."""
        task = self.session.tasks.find(name)
        if task is None:
            raise TaskNotFoundError(name)
        self.builder.check_fields(task, changes)

    def stored_form(self, name: str) -> StoredDefinition | None:
        """What the store keeps for ``name``: the whole runtime definition, or a code task's
        edited fields (None when it has none)."""
        if name in self.runtime:
            return StoredDefinition(name, "runtime", self.runtime[name].model_dump(mode="json"))
        if self.overrides.get(name):
            return StoredDefinition(name, "code", dict(self.overrides[name]))
        return None

    # -- changing ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def change(
        self, name: str, actor: Actor, action: Change, *, reason: str | None = None
    ) -> AsyncIterator[TaskChange]:
        """Change ``name`` inside the block, durably: all of it, stored with a version, or
        (on any error, a store failure included) none of it."""
        async with self.lock:
            before_task = self.session.tasks.find(name)
            before = self.fields_of(before_task) if before_task is not None else {}
            origin = self.origins.get(name)
            saved = self._save_point(name, before_task)
            try:
                yield TaskChange(self, name)
                after_task = self.session.tasks.find(name)
                after = self.fields_of(after_task) if after_task is not None else {}
                await self._record(
                    name,
                    action,
                    diff(before, after),
                    actor,
                    reason=reason,
                    origin=self.origins.get(name, origin),
                )
            except BaseException:
                self._roll_back(name, saved)
                raise
        if after_task is not None:
            self.scheduler.touch(after_task)
        for listener in self.changed:
            listener(name)

    async def follow(self, name: str) -> None:
        """Apply what another replica stored for ``name`` (it recorded the version there):
        the task as the store has it now, made, changed or gone. A definition that does
        not apply leaves the task as it was, and says why in the log."""
        stored = await store_call(self._definitions.load_one, name)
        async with self.lock:
            if stored == self.stored_form(name) and (stored is not None or name not in self.runtime):
                return  # already so (this replica's own change, or heard twice)
            task = self.session.tasks.find(name)
            saved = self._save_point(name, task)
            try:
                self._apply_stored(name, task, stored)
            except Exception as exc:
                self._roll_back(name, saved)
                logger.error(
                    "Definition of task %r stored by another replica not applied: %s", name, _reason(exc)
                )
                return
        after = self.session.tasks.find(name)
        if after is not None:
            self.scheduler.touch(after)
        for listener in self.changed:
            listener(name)

    def _apply_stored(self, name: str, task: Task | None, stored: StoredDefinition | None) -> None:
        change = TaskChange(self, name)
        if stored is None:
            if task is not None and self.origin(name) == "runtime":
                change.remove()
            elif task is not None and self.overrides.get(name):
                change.reset()
            return
        if stored.origin == "code":
            change.reset()
            change.update(TaskFields.model_validate(stored.fields).changes())
            return
        definition = TaskDefinition.model_validate(stored.fields)
        current = self.runtime.get(name)
        if task is not None and current is not None and runs_the_same(current, definition):
            changes = TaskFields.model_validate(definition.model_dump(include=set(EDITABLE))).changes()
            change.update({k: v for k, v in changes.items() if getattr(current, k) != v})
            return
        if task is not None:
            change.remove()
        change.create(definition)

    async def _record(
        self,
        name: str,
        action: Change,
        changes: dict,
        actor: Actor,
        *,
        reason: str | None,
        origin: str | None,
    ) -> Version:
        """Store ``name``'s definition as the catalog has it now, with a version; publish it."""
        stored = self.stored_form(name)
        version = Version(
            task_name=name,
            actor=actor.name,
            client=actor.client,
            action=action,
            changes=changes,
            reason=reason,
            origin=origin or "code",
            definition=stored.fields if stored else None,
        )
        saved = await store_call(self._definitions.save, stored, version, name=name)
        self._events.publish(
            action, name, saved.created, {"changes": changes, "actor": actor.name, "reason": reason}
        )
        return saved

    def add(self, definition: TaskDefinition) -> Task:
        """A runtime task made from ``definition``, in the session and the catalog."""
        task, kept = self.builder.build(definition)
        self.origins[definition.name] = "runtime"
        self.runtime[definition.name] = kept
        self.broken.pop(definition.name, None)
        return task

    def discard(self, task: Task) -> None:
        """``task`` out of the session and the catalog."""
        self.session.remove_task(task)
        self.runtime.pop(task.name, None)
        self.origins.pop(task.name, None)
        self.scheduler.forget(task.name)

    def _save_point(self, name: str, task: Task | None) -> _SavePoint:
        overrides = self.overrides.get(name)
        if task is None:  # never ``if task``: a Rocketry task's truth value is its condition's
            return _SavePoint(None, {}, None, None, self.runtime.get(name), overrides, self.origins.get(name))
        return _SavePoint(
            task=task,
            attributes={attribute: getattr(task, attribute) for attribute in ATTRIBUTES},
            parameters=Parameters(task.parameters),
            overlap=self.scheduler.overlap.effective(task),
            runtime=self.runtime.get(name),
            overrides=dict(overrides) if overrides is not None else None,
            origin=self.origins.get(name),
        )

    def _roll_back(self, name: str, saved: _SavePoint) -> None:
        current = self.session.tasks.find(name)
        if current is not None and current is not saved.task:
            self.session.remove_task(current)  # made by the failed change
            self.scheduler.forget(name)
        task = saved.task
        if task is not None:
            if current is not task:
                self.session.add_task(task)  # removed by the failed change
            for attribute, value in saved.attributes.items():
                setattr(task, attribute, value)
            task.parameters = saved.parameters
            self.scheduler.set_overlap(task, saved.overlap)
        for mapping, value in (
            (self.runtime, saved.runtime),
            (self.overrides, saved.overrides),
            (self.origins, saved.origin),
        ):
            if value is None:
                mapping.pop(name, None)
            else:
                mapping[name] = value


def runs_the_same(current: TaskDefinition, wanted: TaskDefinition) -> bool:
    """Whether two runtime definitions run the same thing (an edit can make one the other)."""
    return (current.func, current.command, current.arguments) == (
        wanted.func,
        wanted.command,
        wanted.arguments,
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for every field whose value changed."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip()}".rstrip(": ")
