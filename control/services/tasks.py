"""TaskService: read tasks, run and terminate them, change and create and delete them, durably."""

from __future__ import annotations

from control.definitions.model import EDITABLE, TaskDefinition, TaskFields, diff
from control.engine.admission import Condition
from control.errors import InvalidInputError, TaskNotFoundError, TaskStateError, VersionNotFoundError
from control.parameters import check_parameters, parameter_rule
from control.prediction import History, explain_condition
from control.schemas import (
    ActionAccepted,
    ConditionNode,
    Explanation,
    TaskPublic,
    VersionList,
    VersionPublic,
)
from control.services.context import Actor, Context, utc
from control.stores.base import VersionQuery

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import TypeAdapter
from rocketry.core import Task

_TASK_JSON = TypeAdapter(TaskPublic)
_STOP_WAIT = 3.0  # seconds a delete waits for terminated runs to end
# Seconds a next-run prediction may take while a request waits; beyond, it is made in the
# background, where it may take a little longer before it gives up (null: not known).
_INLINE_BUDGET = 0.01
_BACKGROUND_BUDGET = 2.0


class TaskService:
    def __init__(self, context: Context):
        self._ctx = context
        self._session = context.session
        self._scheduler = context.scheduler
        self._catalog = context.catalog
        self._views: dict[str, tuple[tuple, bytes, tuple]] = {}
        self._predictions: dict[str, tuple[tuple, float | None, object, float]] = {}
        self._predicting: dict[tuple[str, tuple], asyncio.Task] = {}

    # -- reading -----------------------------------------------------------------------

    def task(self, name: str) -> Task:
        try:
            return self._session[name]
        except KeyError:
            raise TaskNotFoundError(name) from None

    def _public(self, task: Task, next_run: float | None) -> TaskPublic:
        catalog = self._catalog
        fields = catalog.fields_of(task)
        return TaskPublic(
            name=task.name,
            description=task.description,
            origin=catalog.origin(task.name),
            target=catalog.target(task),
            start_cond=fields["start_cond"],
            end_cond=fields["end_cond"],
            execution=fields["execution"],
            priority=task.priority,
            timeout=fields["timeout"],
            parameters=fields["parameters"],
            overlap=fields["overlap"],
            disabled=task.disabled,
            overridden=catalog.overridden(task.name),
            status="queued" if task.name in self._scheduler.queued else task.status,
            is_running=task.is_alive(),
            next_run=utc(next_run),
            last_run=utc(task._last_run),
            last_success=utc(task._last_success),
            last_fail=utc(task._last_fail),
            last_terminate=utc(task._last_terminate),
            last_crash=utc(task._last_crash),
        )

    def get_task(self, name: str) -> TaskPublic:
        task = self.task(name)
        return self._public(task, self.next_run(task))

    def list_tasks_json(self) -> bytes:
        """``TaskList`` as JSON. Each task's JSON is kept until one of the values it shows
        changes, so listing thousands of tasks costs a tuple comparison per task."""
        views = {}
        previous = self._views
        catalog, scheduler = self._catalog, self._scheduler
        # One budget for every prediction the listing makes; the rest are made in the background.
        deadline = time.monotonic() + _INLINE_BUDGET
        for task in self._session.tasks:
            name = task.name
            start, end = task.start_cond, task.end_cond
            next_run = self.next_run(task, deadline=deadline)
            # Conditions by identity (an edit assigns a new object); the objects are kept
            # with the view so that their ids cannot be reused meanwhile.
            key = (
                task.status,
                bool(task._run_stack) and task.is_alive(),
                task._last_run,
                task._last_success,
                task._last_fail,
                task._last_terminate,
                task._last_crash,
                task.disabled,
                task.priority,
                task.execution,
                task.timeout,
                task.description,
                id(start),
                id(end),
                next_run,
                scheduler.overlap.of(name),
                name in scheduler.queued,
                id(catalog.overrides.get(name)),
                id(catalog.runtime.get(name)),
            )
            cached = previous.get(name)
            if cached is None or cached[0] != key:
                cached = (key, _TASK_JSON.dump_json(self._public(task, next_run)), (start, end))
            views[name] = cached
        self._views = views
        body = b",".join(views[name][1] for name in sorted(views))
        return b'{"data":[' + body + b'],"count":' + str(len(views)).encode() + b"}"

    def next_run(self, task: Task, *, deadline: float | None = None) -> float | None:
        """When the task is next due if time alone decides it; kept until the task runs,
        is edited, or that time passes. Worked out here until ``deadline`` (by default a few
        milliseconds from now), in the background past it (null until known)."""
        if task.disabled:
            return None
        now = time.time()
        key = (
            id(task.start_cond),
            task._last_run,
            task._last_success,
            task._last_fail,
            task._last_terminate,
            task._last_inaction,
            task._last_crash,
        )
        cached = self._predictions.get(task.name)
        # A prediction holds until the task runs or is edited (the key), or its time comes;
        # "due now" for a task that cannot start yet is kept a second, not recomputed per listing.
        if (
            cached is not None
            and cached[0] == key
            and (cached[1] is None or cached[1] > now or now < cached[3])
        ):
            return cached[1]
        forecast = self._ctx.predictor.next_runs(
            task.start_cond,
            like=task,
            now=now,
            count=1,
            deadline=deadline if deadline is not None else time.monotonic() + _INLINE_BUDGET,
        )
        if not forecast.complete:
            # Too costly to work out while a request waits: finished in the background, and
            # shown once known.
            self._predict_later(task, key, now)
            return cached[1] if cached is not None and cached[0] == key else None
        value = forecast.times[0] if forecast.times else None
        # The condition is kept with the entry: its id is part of the key.
        self._predictions[task.name] = (key, value, task.start_cond, now + 1.0)
        return value

    def _predict_later(self, task: Task, key: tuple, now: float) -> None:
        job = (task.name, key)
        if job in self._predicting:
            return
        condition, history = task.start_cond, History(task)

        async def predict() -> None:
            try:
                forecast = await self._ctx.background_predictor.next_runs(
                    condition, like=history, now=now, count=1, deadline=time.monotonic() + _BACKGROUND_BUDGET
                )
                # Cut short again, it stays unknown (null) until the task runs or is edited.
                value = forecast.times[0] if forecast.times else None
                self._predictions[task.name] = (key, value, condition, now + 1.0)
            finally:
                del self._predicting[job]

        self._predicting[job] = asyncio.get_running_loop().create_task(predict())

    async def warm_predictions(self) -> None:
        """Work out every task's next run once the scheduler has restored their history, so
        the first listing does not pay for thousands of predictions at once."""
        await self._scheduler.ready.wait()
        slice_began = time.perf_counter()
        for task in list(self._session.tasks):
            self.next_run(task)
            if time.perf_counter() - slice_began > 0.004:
                await asyncio.sleep(0)  # the API keeps answering meanwhile
                slice_began = time.perf_counter()

    def explain(self, name: str) -> Explanation:
        """What a check would decide now, and why: the scheduler's own admission rule, given
        the condition's value worked out part by part."""
        task = self.task(name)
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
            next_run=utc(self.next_run(task)),
        )

    # -- running -----------------------------------------------------------------------

    async def run_task(self, name: str, parameters: dict[str, Any] | None = None) -> ActionAccepted:
        task = self.task(name)
        parameters = parameters or {}
        check_parameters(parameter_rule(task), parameters, name=name)
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
            return ActionAccepted(task=name, action="run", detail=detail)
        detail = (
            {
                "buffer_one": "queued: it starts when the current run ends",
                "replace": "the running run was terminated; a new one starts",
                "allow": "started beside the running run",
            }.get(overlap)
            if running
            else None
        )
        return ActionAccepted(task=name, action="run", detail=detail or "run requested")

    def terminate_task(self, name: str) -> ActionAccepted:
        task = self.task(name)
        if not task.is_alive():
            raise TaskStateError(f"Task '{name}' is not running")
        task.terminate()
        self._scheduler.wake()
        return ActionAccepted(task=name, action="terminate", detail="termination requested")

    # -- changing, durably -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, name: str) -> AsyncIterator[Task]:
        """Hold the write lock, with ``name``'s task looked up under it: a change that waited
        for a concurrent delete of the same task is a 404, not an error."""
        async with self._ctx.write_lock:
            yield self.task(name)

    async def update_task(
        self, name: str, fields: TaskFields, actor: Actor, *, action: str = "edit", reason: str | None = None
    ) -> TaskPublic:
        """Apply every change or none, then store it; a store failure undoes it (503)."""
        changes = fields.changes()
        async with self._locked(name) as task:
            before_fields = self._catalog.fields_of(task)
            saved = self._catalog.save_point(name)
            self._catalog.update(task, changes)
            after_fields = self._catalog.fields_of(task)
            try:
                await self._ctx.record(name, action, diff(before_fields, after_fields), actor, reason=reason)
            except Exception:
                self._catalog.roll_back(task, saved)
                raise
        self._scheduler.touch(task)
        return self.get_task(name)

    async def set_disabled(
        self, name: str, disabled: bool, actor: Actor, reason: str | None = None
    ) -> TaskPublic:
        return await self.update_task(
            name,
            TaskFields(disabled=disabled),
            actor,
            action="disable" if disabled else "enable",
            reason=reason,
        )

    async def create_task(self, definition: TaskDefinition, actor: Actor) -> TaskPublic:
        async with self._ctx.write_lock:
            task = self._catalog.create(definition)
            try:
                created = self._catalog.fields_of(task)
                await self._ctx.record(task.name, "create", diff({}, created), actor)
            except Exception:
                self._catalog.remove(task)
                raise
        self._scheduler.touch(task)
        return self.get_task(task.name)

    async def delete_task(self, name: str, actor: Actor, *, terminate: bool) -> None:
        task = self.task(name)
        if self._catalog.origin(name) == "code":
            self._catalog.remove(task)  # refuses, saying why
        if task.is_alive():
            if not terminate:
                raise TaskStateError(f"Task '{name}' is running; pass terminate=true to terminate it first")
            await self._scheduler.terminate_now(task, "deleted")
            if not await self._scheduler.wait_stopped(task, _STOP_WAIT):
                raise TaskStateError(f"Task '{name}' did not stop (a thread that ignores termination)")
        async with self._locked(name) as task:
            if task.is_alive():  # started again while it was being stopped
                raise TaskStateError(f"Task '{name}' is running; pass terminate=true to terminate it first")
            definition = self._catalog.runtime[name]
            before = self._catalog.fields_of(task)
            self._catalog.remove(task)
            try:
                await self._ctx.record(name, "delete", diff(before, {}), actor, origin="runtime")
            except Exception:
                self._catalog.create(definition)
                raise

    async def reset_task(self, name: str, actor: Actor) -> TaskPublic:
        """Return a code task to its code definition."""
        async with self._locked(name) as task:
            before = self._catalog.fields_of(task)
            saved = self._catalog.save_point(name)
            self._catalog.reset(task)
            try:
                await self._ctx.record(name, "reset", diff(before, self._catalog.fields_of(task)), actor)
            except Exception:
                self._catalog.roll_back(task, saved)
                raise
        self._scheduler.touch(task)
        return self.get_task(name)

    # -- history -----------------------------------------------------------------------

    async def versions(self, name: str, query: VersionQuery) -> VersionList:
        entries, next_cursor = await asyncio.to_thread(self._ctx.stores.definitions.versions, name, query)
        if not entries and query.cursor is None and name not in self._session:
            raise TaskNotFoundError(name)
        return VersionList(
            data=[VersionPublic(**{**vars(v), "created": utc(v.created)}) for v in entries],
            next_cursor=next_cursor.encode() if next_cursor else None,
        )

    async def restore(self, name: str, version_id: int, actor: Actor) -> TaskPublic:
        """Make ``name`` what it was after version ``version_id``."""
        version = await asyncio.to_thread(self._ctx.stores.definitions.version, name, version_id)
        if version is None:
            raise VersionNotFoundError(f"Task '{name}' has no version {version_id}")
        if version.origin == "code":
            if self._catalog.origin(name) != "code" or name not in self._session:
                raise TaskStateError(f"Task '{name}' is no longer defined in code")
            wanted = TaskFields.model_validate(version.definition or {})
            async with self._locked(name) as task:
                before = self._catalog.fields_of(task)
                saved = self._catalog.save_point(name)
                self._catalog.reset(task)
                if version.definition:
                    self._catalog.update(task, wanted.changes())
                try:
                    await self._ctx.record(
                        name,
                        "restore",
                        diff(before, self._catalog.fields_of(task)),
                        actor,
                        reason=f"version {version_id}",
                    )
                except Exception:
                    self._catalog.roll_back(task, saved)
                    raise
            self._scheduler.touch(task)
            return self.get_task(name)
        if version.definition is None:
            raise InvalidInputError(
                f"version {version_id} is the task's deletion; restore a version before it",
                field="version",
                value=version_id,
                location="path",
            )
        definition = TaskDefinition.model_validate(version.definition)
        return await self.replace_runtime(definition, actor, action="restore", reason=f"version {version_id}")

    async def replace_runtime(
        self, definition: TaskDefinition, actor: Actor, *, action: str, reason: str | None = None
    ) -> TaskPublic:
        """Create the runtime task, or make the existing one exactly ``definition``."""
        name = definition.name
        existing = self._session.tasks.find(name)
        if existing is None:
            async with self._ctx.write_lock:
                task = self._catalog.create(definition)
                try:
                    await self._ctx.record(
                        name, action, diff({}, self._catalog.fields_of(task)), actor, reason=reason
                    )
                except Exception:
                    self._catalog.remove(task)
                    raise
            self._scheduler.touch(task)
            return self.get_task(name)
        if self._catalog.origin(name) != "runtime":
            raise TaskStateError(f"Task '{name}' is defined in code; its definition cannot be replaced")
        current = self._catalog.runtime[name]
        if (current.func, current.command) != (definition.func, definition.command):
            async with self._locked(name) as existing:
                current = self._catalog.runtime[name]
                if existing.is_alive():
                    raise TaskStateError(f"Task '{name}' is running; what it runs cannot change meanwhile")
                before = self._catalog.fields_of(existing)
                self._catalog.remove(existing)
                try:
                    task = self._catalog.create(definition)
                except Exception:
                    self._catalog.create(current)
                    raise
                try:
                    await self._ctx.record(
                        name, action, diff(before, self._catalog.fields_of(task)), actor, reason=reason
                    )
                except Exception:
                    self._catalog.remove(task)
                    self._catalog.create(current)
                    raise
            self._scheduler.touch(task)
            return self.get_task(name)
        changes = definition.model_dump(include=set(EDITABLE))
        return await self.update_task(
            name, TaskFields.model_validate(changes), actor, action=action, reason=reason
        )
