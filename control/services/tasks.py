"""TaskService: show tasks and explain them, run and terminate them, and change them durably.

Every change is a few lines in a ``TaskCatalog.change`` block; whether a task may start is
the scheduler's admission rule, here as in the loop. Nothing it returns is a live task.
"""

from __future__ import annotations

from control.actions import Change
from control.engine.admission import Condition
from control.engine.loop import ControlScheduler
from control.errors import InvalidInputError, TaskNotFoundError, TaskStateError, VersionNotFoundError
from control.parameters import check_parameters, parameter_rule
from control.prediction import explain_condition
from control.schemas.common import PageFilter
from control.schemas.tasks import (
    EDITABLE,
    ActionAccepted,
    ConditionNode,
    Explanation,
    TaskDefinition,
    TaskFields,
    TaskPublic,
    VersionList,
    VersionPublic,
)
from control.services.catalog import TaskCatalog, runs_the_same
from control.services.common import Actor
from control.services.replicas import ReplicaService
from control.services.views import TaskViews
from control.stores.base import DefinitionStore, VersionQuery
from control.times import utc

import asyncio
from typing import Any

from rocketry.core import Task

_STOP_WAIT = 3.0  # seconds a delete waits for terminated runs to end
_RUNNING_BESIDE = {
    "buffer_one": "queued: it starts when the current run ends",
    "replace": "the running run was terminated; a new one starts",
    "allow": "started beside the running run",
}


class TaskService:
    def __init__(
        self,
        session,
        scheduler: ControlScheduler,
        *,
        catalog: TaskCatalog,
        views: TaskViews,
        definitions: DefinitionStore,
        replicas: ReplicaService | None = None,
    ):
        self._session = session
        self._scheduler = scheduler
        self._catalog = catalog
        self._views = views
        self._definitions = definitions
        self._replicas = replicas
        if replicas is not None:
            replicas.carry_out = self.carry_out

    def _task(self, name: str) -> Task:
        task = self._session.tasks.find(name)
        if task is None:
            raise TaskNotFoundError(name)
        return task

    # -- reading -------------------------------------------------------------------------

    def require(self, name: str) -> None:
        """Raise ``TaskNotFoundError`` if no task is named ``name``."""
        self._task(name)

    def get_task(self, name: str) -> TaskPublic:
        return self._views.public(self._task(name))

    def list_tasks_json(self) -> bytes:
        return self._views.listing_json()

    def explain(self, name: str) -> Explanation:
        """What a check would decide now, and why: the scheduler's own admission rule, given
        the condition's value worked out part by part."""
        task = self._task(name)
        tree = explain_condition(task.start_cond, task=task, session=self._session, texts=self._catalog.texts)
        admission = self._scheduler.admission(task, Condition(tree["value"], tree["error"]))
        return Explanation(
            task=name,
            would_start=admission.would_start,
            decision=admission.decision,
            reasons=list(admission.reasons),
            disabled=task.disabled,
            running=task.is_alive(),
            run_requested=bool(task.batches),
            overlap=self._scheduler.overlap.effective(task),
            on_hold=self._scheduler.circumstances().on_hold,
            start_cond=ConditionNode.model_validate(tree),
            next_run=utc(self._views.next_run(task)),
        )

    async def versions(self, name: str, page: PageFilter) -> VersionList:
        since, until = page.window()
        query = VersionQuery(since=since, until=until, limit=page.limit, cursor=page.decoded_cursor())
        entries, next_cursor = await asyncio.to_thread(self._definitions.versions, name, query)
        if not entries and query.cursor is None and not self._catalog.exists(name):
            raise TaskNotFoundError(name)
        return VersionList(
            data=[VersionPublic(**{**vars(v), "created": utc(v.created)}) for v in entries],
            next_cursor=next_cursor.encode() if next_cursor else None,
        )

    # -- running -------------------------------------------------------------------------

    async def run_task(self, name: str, parameters: dict[str, Any] | None = None) -> ActionAccepted:
        task = self._task(name)
        parameters = parameters or {}
        check_parameters(parameter_rule(task), parameters, name=name)
        if self._replicas is not None and self._replicas.must_ask():
            answer = await self._replicas.ask("run", name, {"parameters": parameters})
            return ActionAccepted.model_validate(answer)
        return await self._run_here(task, parameters)

    async def _run_here(self, task: Task, parameters: dict[str, Any]) -> ActionAccepted:
        name = task.name
        refusal = self._scheduler.refusal(task)
        if refusal is not None:
            raise TaskStateError(refusal)
        running = task.is_alive()
        overlap = self._scheduler.overlap.effective(task)
        task.run(parameters)
        await self._scheduler.start_now(task)
        if name in self._scheduler.queued:
            slots = self._session.config.max_process_count
            detail = f"queued: all {slots} process slots are taken; it starts when one is free"
        else:
            detail = (_RUNNING_BESIDE.get(overlap) if running else None) or "run requested"
        return ActionAccepted(task=name, action="run", detail=detail)

    async def terminate_task(self, name: str) -> ActionAccepted:
        task = self._task(name)
        if self._replicas is not None and self._replicas.must_ask():
            return ActionAccepted.model_validate(await self._replicas.ask("terminate", name, {}))
        return self._terminate_here(task)

    def _terminate_here(self, task: Task) -> ActionAccepted:
        if not task.is_alive():
            raise TaskStateError(f"Task '{task.name}' is not running")
        task.terminate()
        self._scheduler.wake()
        return ActionAccepted(task=task.name, action="terminate", detail="termination requested")

    async def carry_out(self, kind: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """What the leader does when a follower asks it to run or terminate ``name``."""
        task = self._task(name)
        if kind == "run":
            parameters = payload.get("parameters") or {}
            check_parameters(parameter_rule(task), parameters, name=name)
            accepted = await self._run_here(task, parameters)
        elif kind == "terminate":
            accepted = self._terminate_here(task)
        else:
            raise TaskStateError(f"unknown request {kind!r}")
        return accepted.model_dump(mode="json")

    # -- changing, durably ---------------------------------------------------------------

    async def update_task(
        self,
        name: str,
        fields: TaskFields,
        actor: Actor,
        *,
        action: Change = "edit",
        reason: str | None = None,
    ) -> TaskPublic:
        """Apply every change or none, then store it; a store failure undoes it (503)."""
        async with self._catalog.change(name, actor, action, reason=reason) as change:
            change.update(fields.changes())
        return self.get_task(name)

    async def set_disabled(
        self, name: str, disabled: bool, actor: Actor, reason: str | None = None
    ) -> TaskPublic:
        action: Change = "disable" if disabled else "enable"
        return await self.update_task(
            name, TaskFields(disabled=disabled), actor, action=action, reason=reason
        )

    async def create_task(self, definition: TaskDefinition, actor: Actor) -> TaskPublic:
        async with self._catalog.change(definition.name, actor, "create") as change:
            change.create(definition)
        return self.get_task(definition.name)

    async def delete_task(self, name: str, actor: Actor, *, terminate: bool) -> None:
        task = self._task(name)
        if self._catalog.origin(name) == "code":
            raise TaskStateError(
                f"Task '{name}' is defined in code and would return at the next start; "
                "disable it, or remove it from the code"
            )
        if task.is_alive():
            if not terminate:
                raise TaskStateError(f"Task '{name}' is running; pass terminate=true to terminate it first")
            await self._scheduler.terminate_now(task, "deleted")
            if not await self._scheduler.wait_stopped(task, _STOP_WAIT):
                raise TaskStateError(f"Task '{name}' did not stop (a thread that ignores termination)")
        async with self._catalog.change(name, actor, "delete") as change:
            if change.require().is_alive():  # started again while it was being stopped
                raise TaskStateError(f"Task '{name}' is running; pass terminate=true to terminate it first")
            change.remove()

    async def reset_task(self, name: str, actor: Actor) -> TaskPublic:
        """Return a code task to its code definition."""
        async with self._catalog.change(name, actor, "reset") as change:
            change.reset()
        return self.get_task(name)

    async def restore(self, name: str, version_id: int, actor: Actor) -> TaskPublic:
        """Make ``name`` what it was after version ``version_id``."""
        version = await asyncio.to_thread(self._definitions.version, name, version_id)
        if version is None:
            raise VersionNotFoundError(f"Task '{name}' has no version {version_id}")
        reason = f"version {version_id}"
        if version.origin == "code":
            if self._catalog.origin(name) != "code" or not self._catalog.exists(name):
                raise TaskStateError(f"Task '{name}' is no longer defined in code")
            wanted = TaskFields.model_validate(version.definition or {}).changes()
            async with self._catalog.change(name, actor, "restore", reason=reason) as change:
                change.reset()
                change.update(wanted)
            return self.get_task(name)
        if version.definition is None:
            raise InvalidInputError(
                f"version {version_id} is the task's deletion; restore a version before it",
                field="version",
                value=version_id,
                location="path",
            )
        definition = TaskDefinition.model_validate(version.definition)
        return await self.replace_runtime(definition, actor, action="restore", reason=reason)

    async def replace_runtime(
        self, definition: TaskDefinition, actor: Actor, *, action: Change, reason: str | None = None
    ) -> TaskPublic:
        """Create the runtime task, or make the existing one exactly ``definition``."""
        name = definition.name
        async with self._catalog.change(name, actor, action, reason=reason) as change:
            task = change.task
            if task is None:
                change.create(definition)
            elif self._catalog.origin(name) != "runtime":
                raise TaskStateError(f"Task '{name}' is defined in code; its definition cannot be replaced")
            elif runs_the_same(self._catalog.runtime[name], definition):
                change.update(
                    TaskFields.model_validate(definition.model_dump(include=set(EDITABLE))).changes()
                )
            elif task.is_alive():
                raise TaskStateError(f"Task '{name}' is running; what it runs cannot change meanwhile")
            else:
                change.remove()
                change.create(definition)
        return self.get_task(name)
