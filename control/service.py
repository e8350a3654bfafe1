"""SchedulerService: the one place that reads and changes the Rocketry session for the API."""

from __future__ import annotations

from control.conditions import ConditionTexts, parse_condition
from control.errors import InvalidInputError, InvalidParametersError, TaskNotFoundError, TaskStateError
from control.logstores.base import LogPage, LogQuery, LogStore
from control.logstores.url import redacted
from control.schemas import (
    ActionAccepted,
    HealthPublic,
    SessionConfigPublic,
    SessionPublic,
    StoreHealthPublic,
    StoreStatePublic,
    TaskPublic,
    TaskUpdate,
)
from control.settings import Settings

import datetime
import inspect
import time
from typing import Any

from pydantic import TypeAdapter
from rocketry import Rocketry
from rocketry.core import Task
from rocketry.tasks import FuncTask

_NOT_NULL = ("start_cond", "end_cond", "priority", "execution", "disabled")


def _when(timestamp: float | None) -> datetime.datetime | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)


class SchedulerService:
    """Knows nothing of HTTP. Its methods run on the event loop, beside the scheduler,
    except ``read_logs``, which only touches the store and may run in a worker thread."""

    def __init__(self, *, app: Rocketry, store: LogStore, settings: Settings):
        self._session = app.session
        self._scheduler = app.session.scheduler
        self._store = store
        self._settings = settings
        self._texts = ConditionTexts(app.session)
        self._views: dict[str, tuple[tuple, bytes, tuple]] = {}

    # -- tasks -------------------------------------------------------------------------

    def _task(self, name: str) -> Task:
        try:
            return self._session[name]
        except KeyError:
            raise TaskNotFoundError(name) from None

    def _public(self, task: Task) -> TaskPublic:
        return TaskPublic(
            name=task.name,
            description=task.description,
            start_cond=self._texts(task.start_cond),
            end_cond=self._texts(task.end_cond),
            execution=task.get_execution(),
            priority=task.priority,
            timeout=task.timeout.total_seconds() if task.timeout is not None else None,
            disabled=task.disabled,
            status=task.status,
            is_running=task.is_alive(),
            last_run=_when(task._last_run),
            last_success=_when(task._last_success),
            last_fail=_when(task._last_fail),
            last_terminate=_when(task._last_terminate),
            last_crash=_when(task._last_crash),
        )

    def list_tasks(self) -> list[TaskPublic]:
        return [self._public(task) for task in sorted(self._session.tasks, key=lambda t: t.name)]

    def list_tasks_json(self) -> bytes:
        """``TaskList`` as JSON. Each task's JSON is kept until one of the values it shows
        changes, so listing thousands of tasks costs a tuple comparison per task."""
        views = {}
        previous = self._views
        for task in self._session.tasks:
            start, end = task.start_cond, task.end_cond
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
            )
            cached = previous.get(task.name)
            if cached is None or cached[0] != key:
                cached = (key, _TASK_JSON.dump_json(self._public(task)), (start, end))
            views[task.name] = cached
        self._views = views
        body = b",".join(views[name][1] for name in sorted(views))
        return b'{"data":[' + body + b'],"count":' + str(len(views)).encode() + b"}"

    def get_task(self, name: str) -> TaskPublic:
        return self._public(self._task(name))

    def update_task(self, name: str, changes: TaskUpdate) -> TaskPublic:
        """Apply every change or none: all values are checked before the task is touched."""
        task = self._task(name)
        values = changes.model_dump(exclude_unset=True)
        for field in _NOT_NULL:
            if field in values and values[field] is None:
                raise InvalidInputError(f"{field} cannot be null", field=field)
        for field in ("start_cond", "end_cond"):
            if field in values:
                values[field] = parse_condition(values[field], session=self._session, field=field)
        if values.get("execution") == "process" and getattr(task, "func", None) is not None:
            if getattr(task.func, "__name__", None) == "<lambda>":
                raise InvalidInputError("a lambda cannot run in a process", field="execution")
        for field, value in values.items():
            setattr(task, field, value)
        self._scheduler.touch(task)
        return self._public(task)

    def set_disabled(self, name: str, disabled: bool) -> TaskPublic:
        task = self._task(name)
        task.disabled = disabled
        self._scheduler.touch(task)
        return self._public(task)

    async def run_task(self, name: str, parameters: dict[str, Any] | None = None) -> ActionAccepted:
        task = self._task(name)
        parameters = parameters or {}
        _check_parameters(task, parameters)
        if task.is_alive() and not self._allows_overlap(task):
            raise TaskStateError(f"Task '{name}' is already running")
        if task.batches:
            raise TaskStateError(f"Task '{name}' already has a run waiting to start")
        task.run(parameters)
        await self._scheduler.start_now(task)
        return ActionAccepted(task=name, action="run", detail="run requested")

    def _allows_overlap(self, task: Task) -> bool:
        return bool(task.multilaunch if task.multilaunch is not None else self._session.config.multilaunch)

    def terminate_task(self, name: str) -> ActionAccepted:
        task = self._task(name)
        if not task.is_alive():
            raise TaskStateError(f"Task '{name}' is not running")
        task.terminate()
        self._scheduler.wake()
        return ActionAccepted(task=name, action="terminate", detail="termination requested")

    # -- logs --------------------------------------------------------------------------

    def read_logs(self, query: LogQuery) -> LogPage:
        """A page of the log; blocking (database I/O), so call it off the event loop."""
        if self._store.health().status == "ok":
            # What was logged before the request is part of the answer.
            self._store.flush(timeout=1.0)
        return self._store.page(query)

    def require_task(self, name: str) -> None:
        self._task(name)

    # -- the session -------------------------------------------------------------------

    def session_info(self) -> SessionPublic:
        scheduler = self._scheduler
        settings = self._settings
        started = scheduler.started_at
        return SessionPublic(
            state=scheduler.state,
            started_at=_when(started),
            uptime_seconds=time.time() - started if started is not None else None,
            task_count=len(self._session.tasks),
            running_count=sum(1 for task in self._session.tasks if task.is_alive()),
            store=self._store_health(),
            cycles=scheduler.n_cycles,
            checks=scheduler.n_checks,
            mean_cycle_seconds=scheduler.mean_cycle_seconds,
            config=SessionConfigPublic(
                host=settings.host,
                port=settings.port,
                database=redacted(settings.database_url),
                task_packages=settings.task_packages,
                cycle_sleep=settings.cycle_sleep,
                default_timeout=settings.default_timeout,
                shutdown_timeout=settings.shutdown_timeout,
                retention_days=settings.retention_days,
                retention_per_task=settings.retention_per_task,
            ),
        )

    def request_shutdown(self) -> None:
        self._scheduler.request_stop()

    def _store_health(self) -> StoreStatePublic:
        store = self._store.health()
        return StoreStatePublic(
            status=store.status, pending=store.pending, lost=store.lost, last_error=store.last_error
        )

    def health(self) -> HealthPublic:
        store = self._store.health()
        scheduler_state = self._scheduler.state
        if scheduler_state != "running":
            status = "unavailable"
        else:
            status = "ok" if store.status == "ok" else "degraded"
        return HealthPublic(
            status=status,
            scheduler=scheduler_state,
            store=StoreHealthPublic(status=store.status, pending=store.pending, lost=store.lost),
        )


_TASK_JSON = TypeAdapter(TaskPublic)


def _check_parameters(task: Task, parameters: dict[str, Any]) -> None:
    """Refuse parameters the task's function would reject when it is called."""
    if not parameters or not isinstance(task, FuncTask) or task.func is None:
        return
    try:
        signature = inspect.signature(task.func)
    except (TypeError, ValueError):
        return
    accepted = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted):
        return
    names = {
        p.name
        for p in accepted
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = sorted(set(parameters) - names)
    if unknown:
        raise InvalidParametersError(
            f"task '{task.name}' takes no parameter {', '.join(map(repr, unknown))}"
            f" (it takes: {', '.join(sorted(names)) or 'none'})",
            field="parameters",
            value=parameters,
        )
