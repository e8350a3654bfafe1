"""TaskViews: tasks as the API shows them, rendered once per change, with their next run.

The listing keeps each task's JSON until it changes: a change to its definition (every one
goes through the catalog, which says so) or to its run state (its status and latest times,
whether it runs or waits for a slot, its next run). So a field added to the definition
cannot go stale in the listing, and listing thousands of tasks costs a comparison each.

Next runs are predicted (``control.prediction``) on the event loop within a small budget
shared by a request, and finished in the background past it (null until known).
"""

from __future__ import annotations

from control.engine.loop import ControlScheduler
from control.prediction import BackgroundPredictor, History, Predictor
from control.schemas.tasks import TaskPublic
from control.services.catalog import TaskCatalog
from control.times import utc

import asyncio
import time

from pydantic import TypeAdapter
from rocketry.core import Task

_TASK_JSON = TypeAdapter(TaskPublic)
# Seconds predictions may take while a request waits; beyond, they are made in the
# background, where one may take a little longer before it gives up (null: not known).
_INLINE_BUDGET = 0.01
_BACKGROUND_BUDGET = 2.0
_SLICE = 0.004  # longest stretch of warming before the API gets the loop back


class TaskViews:
    def __init__(self, session, scheduler: ControlScheduler, catalog: TaskCatalog):
        self._session = session
        self._scheduler = scheduler
        self._catalog = catalog
        self._predictor = Predictor(session)  # on the event loop, within small budgets
        self.background = BackgroundPredictor(session)  # off it, for what may take long
        self._views: dict[str, tuple[tuple, bytes]] = {}
        self._predictions: dict[str, tuple[tuple, float | None, object, float]] = {}
        self._predicting: dict[tuple[str, tuple], asyncio.Task] = {}
        catalog.changed.append(self.forget)

    def forget(self, name: str) -> None:
        """``name`` changed: render it again when it is next shown."""
        self._views.pop(name, None)

    def public(self, task: Task, *, deadline: float | None = None) -> TaskPublic:
        catalog, scheduler = self._catalog, self._scheduler
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
            status="queued" if task.name in scheduler.queued else task.status,
            is_running=task.is_alive() or self._runs_on_the_leader(task),
            next_run=utc(self.next_run(task, deadline=deadline)),
            last_run=utc(task._last_run),
            last_success=utc(task._last_success),
            last_fail=utc(task._last_fail),
            last_terminate=utc(task._last_terminate),
            last_crash=utc(task._last_crash),
        )

    def _runs_on_the_leader(self, task: Task) -> bool:
        """On a follower: the leader's records say the task runs (it runs there, not here)."""
        scheduler = self._scheduler
        return scheduler.gate.shared and scheduler.epoch is None and task.status == "run"

    def listing_json(self) -> bytes:
        """``TaskList`` as JSON, each task's part kept until it changes."""
        views = {}
        previous = self._views
        queued = self._scheduler.queued
        # One budget for every prediction the listing makes; the rest are made in the background.
        deadline = time.monotonic() + _INLINE_BUDGET
        for task in self._session.tasks:
            name = task.name
            next_run = self.next_run(task, deadline=deadline)
            # The run state: everything shown that changes without an edit.
            key = (
                task.status,
                bool(task._run_stack) and task.is_alive(),
                name in queued,
                task._last_run,
                task._last_success,
                task._last_fail,
                task._last_terminate,
                task._last_crash,
                next_run,
            )
            cached = previous.get(name)
            if cached is None or cached[0] != key:
                cached = (key, _TASK_JSON.dump_json(self.public(task, deadline=deadline)))
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
        forecast = self._predictor.next_runs(
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
                forecast = await self.background.next_runs(
                    condition, like=history, now=now, count=1, deadline=time.monotonic() + _BACKGROUND_BUDGET
                )
                # Cut short again, it stays unknown (null) until the task runs or is edited.
                value = forecast.times[0] if forecast.times else None
                self._predictions[task.name] = (key, value, condition, now + 1.0)
            finally:
                del self._predicting[job]

        self._predicting[job] = asyncio.get_running_loop().create_task(predict())

    async def warm(self) -> None:
        """Work out every task's next run once the scheduler has restored their history, so
        the first listing does not pay for thousands of predictions at once."""
        await self._scheduler.ready.wait()
        slice_began = time.perf_counter()
        for task in list(self._session.tasks):
            self.next_run(task)
            if time.perf_counter() - slice_began > _SLICE:
                await asyncio.sleep(0)  # the API keeps answering meanwhile
                slice_began = time.perf_counter()

    def close(self) -> None:
        self.background.close()
