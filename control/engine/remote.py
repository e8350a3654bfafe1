"""Runs on workers (``execution: celery``): sent from the event loop, followed through the
database, settled here as local runs are.

A start logs ``run`` and hands the run to a ``Dispatcher`` (a thread of its own records it
in the ``RemoteRunStore``, then sends it to the broker: the loop never waits on either). A
worker takes the run in the store (so it runs once, however often it is delivered), beats
while it runs, and stores its outcome. Every ``POLL`` seconds the loop reads the states of
the runs it follows and logs each outcome through the task, as for a local run: ``success``,
``fail`` with the worker's traceback, ``terminate`` (the worker's timeout, or a terminate
here, which also revokes it), or ``crash`` when the worker stopped beating (killed, host
lost). A run no worker took within the task's timeout is forgotten and logged terminated.

A stopping or deposed leader leaves its remote runs running: whichever replica leads next
finds them in the store and follows them on (``adopt``).
"""

from __future__ import annotations

from control.stores.base import LogEntry, RemoteRun, RemoteRunStore

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from rocketry.core import Task
from rocketry.core.task import TaskRun

logger = logging.getLogger(__name__)

POLL = 0.1  # seconds between two reads of the followed runs' states
BEAT_EVERY = 1.0  # how often a worker says it still runs a run
LOST_AFTER = 5.0  # a run whose worker said nothing for this long crashed
LATE = 10.0  # beyond its timeout, a run the worker did not end is given up


class Dispatcher(Protocol):
    """Sends and revokes runs off the event loop (``control.workers.dispatch``)."""

    def send(
        self, run_id: str, task_name: str, payload: dict[str, Any], timeout: float, *, again: bool = False
    ) -> None: ...

    def revoke(self, run_id: str) -> None: ...

    def stop(self) -> None: ...

    last_error: str | None  # why the broker (or the database) refused, until it accepts again
    pending: int  # sends and revocations not done yet
    sent: int  # runs sent so far


class RemoteHandle:
    """What a remote run's ``TaskRun.task`` is: alive until settled here, or let go."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.done = False
        self.recorded = False  # the store has its row (it is written off the loop, after the start)
        self.started: float | None = None  # when a worker took it (as the store says)

    def is_alive(self) -> bool:
        return not self.done


def is_remote(run: TaskRun) -> bool:
    return isinstance(run.task, RemoteHandle)


class RemoteRuns:
    """``log(task, method, ...)`` logs for a task as the scheduler does."""

    def __init__(self, session, store: RemoteRunStore | None, *, log: Callable[..., None]):
        self.session = session
        self.store = store
        self.dispatcher: Dispatcher | None = None
        # Makes the dispatcher, given "whether any task runs on workers" (set by the app).
        self.connect_with: Callable[[Callable[[], bool]], Dispatcher] | None = None
        self._log = log
        self._followed: dict[str, tuple[Task, TaskRun]] = {}
        self._used, self._used_at = False, -math.inf
        self._poller: asyncio.Task | None = None

    @property
    def count(self) -> int:
        return len(self._followed)

    def used(self) -> bool:
        """Whether some task runs on workers (read at most once a second: it walks every
        task, and ``/health`` asks it)."""
        now = time.monotonic()
        if now - self._used_at > 1.0:
            self._used = any(task.execution == "celery" for task in list(self.session.tasks))
            self._used_at = now
        return self._used

    def connect(self) -> Dispatcher | None:
        """The dispatcher, made at the first need (a task runs on workers)."""
        if self.dispatcher is None and self.connect_with is not None:
            self.dispatcher = self.connect_with(self.used)
        return self.dispatcher

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()

    # -- starting (event loop) ---------------------------------------------------------

    def start(self, task: Task) -> None:
        """Send a run of ``task`` to a worker; it is on the task's run stack at once."""
        session = self.session
        run = TaskRun(start=session.get_time(), task=None)
        task.force_run = False
        params = task.get_extra_params(None, execution="process") | task._get_direct_params()
        run.run_id = task.get_run_id(run, params=params)
        run.task = RemoteHandle(run.run_id)
        self._log(task, "log_running", run)
        task._run_stack.append(run)
        try:
            if self.connect() is None or self.store is None:
                raise RuntimeError("no Celery broker is configured (SCHEDULER_CELERY_BROKER)")
            values = params.pre_materialize(task=task, session=session).materialize(
                task=task, session=session
            )
            payload = {"task": task.name, "target": target_of(task), "parameters": sendable(values)}
        except Exception:
            run.task.done = True
            self._log(task, "log_failure", run)
            raise
        self._followed[run.run_id] = (task, run)
        self.dispatcher.send(run.run_id, task.name, payload, _timeout(session, task))
        self._ensure_polling()

    # -- following (event loop) --------------------------------------------------------

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="remote-runs")

    async def _poll(self) -> None:
        while self._followed:
            await asyncio.sleep(POLL)
            await self.poll_once()

    async def poll_once(self) -> None:
        """Read the followed runs' states and settle what they say."""
        if not self._followed:
            return
        try:
            states = await asyncio.to_thread(self.store.states, list(self._followed))
        except Exception as exc:
            logger.warning("Cannot read the state of runs on workers: %s", exc)
            return
        self.apply(states, now=time.time())

    def apply(self, states: list[RemoteRun], *, now: float) -> None:
        """Settle what ``states`` say ended; runs missing from them were settled elsewhere."""
        known = {state.run_id: state for state in states}
        for run_id, (task, run) in list(self._followed.items()):
            state = known.get(run_id)
            if state is None:
                if run.task.recorded:
                    self._let_go(run_id)  # forgotten: settled by a terminate, or another leader
                elif now - run.start > _timeout(self.session, task):
                    self._give_up(task, run, "timeout: it could not be sent to a worker")
                continue
            run.task.recorded, run.task.started = True, state.started
            if state.outcome is not None:
                self._settle(task, run, state.outcome, state.ended or now, state.message, state.exc_text)
            elif state.started is None:
                if now - state.sent > _timeout(self.session, task):
                    self._give_up(task, run, "timeout: no worker took it", unless_taken=True)
            elif now - (state.beat or state.started) > LOST_AFTER:
                self._settle(task, run, "crash", now, f"the worker {state.worker} stopped answering", None)
            elif now - state.started > _timeout(self.session, task) + LATE:
                self._give_up(task, run, "timeout: the worker did not end it")

    def _settle(
        self, task: Task, run: TaskRun, action: str, ended: float, message: str | None, exc_text: str | None
    ) -> None:
        self._let_go(run.run_id)
        record = logging.LogRecord(
            self.session.config.task_logger_basename,
            logging.ERROR if action in ("fail", "crash") else logging.INFO,
            __file__,
            0,
            message or task.fmt_log_message.format(action=action, task=task.name),
            None,
            None,
        )
        start = run.start
        record.__dict__.update(
            task_name=task.name,
            action=action,
            start=start,
            end=ended,
            runtime=max(0.0, ended - start),
            run_id=run.run_id,
            exc_text=exc_text,
        )
        record.created = ended
        record.exc_info = exc_text  # already formatted, as a task process sends it
        self._log(task, "log_record", record)
        self._forget_later(run.run_id)

    def _give_up(self, task: Task, run: TaskRun, reason: str, *, unless_taken: bool = False) -> None:
        if unless_taken:
            asyncio.get_running_loop().create_task(self._forget_untaken(task, run, reason))
            return
        self.dispatcher.revoke(run.run_id)
        self._let_go(run.run_id)
        self._log(task, "log_termination", reason=reason, task_run=run)
        self._forget_later(run.run_id)

    async def _forget_untaken(self, task: Task, run: TaskRun, reason: str) -> None:
        try:
            forgotten = await asyncio.to_thread(self.store.forget, run.run_id, unless_taken=True)
        except Exception as exc:
            logger.warning("Cannot give up run %s of %r yet: %s", run.run_id, task.name, exc)
            return
        if forgotten and run.run_id in self._followed:
            self.dispatcher.revoke(run.run_id)
            self._let_go(run.run_id)
            self._log(task, "log_termination", reason=reason, task_run=run)

    def _let_go(self, run_id: str) -> None:
        followed = self._followed.pop(run_id, None)
        if followed is not None:
            followed[1].task.done = True

    def _forget_later(self, run_id: str) -> None:
        loop = asyncio.get_running_loop()
        loop.create_task(asyncio.to_thread(_quietly, self.store.forget, run_id))

    # -- terminating, stopping, adopting (event loop) ----------------------------------

    async def terminate(self, task: Task, run: TaskRun, reason: str) -> None:
        """Revoke the run (the worker signals it if it runs) and log it terminated."""
        self._give_up(task, run, reason)

    def let_go_all(self) -> None:
        """This replica stops leading: its runs on workers go on; the next leader follows them."""
        for run_id in list(self._followed):
            self._let_go(run_id)

    async def adopt(self, unfinished: list[LogEntry]) -> set[str]:
        """Follow the runs among ``unfinished`` (runs the log shows started and not ended)
        that were sent to workers; their run ids. The others were cut short here."""
        if self.store is None or not unfinished:
            return set()
        states = await asyncio.to_thread(self.store.states, [e.run_id for e in unfinished if e.run_id])
        known = {state.run_id: state for state in states}
        adopted = set()
        for entry in unfinished:
            task = self.session.tasks.find(entry.task_name)
            if entry.run_id not in known or task is None:
                continue
            start = entry.start if entry.start is not None else entry.created
            run = TaskRun(start=start, task=RemoteHandle(entry.run_id), run_id=entry.run_id)
            run.task.recorded = True
            task._run_stack.append(run)
            task.status = "run"
            self._followed[entry.run_id] = (task, run)
            adopted.add(entry.run_id)
            state = known[entry.run_id]
            if state.started is None and self.connect() is not None:
                # The earlier leader may have died before the broker had it: sent again,
                # and whichever copy a worker takes first runs, once.
                self.dispatcher.send(
                    state.run_id, task.name, state.payload, _timeout(self.session, task), again=True
                )
        if adopted:
            logger.info("Following %d run(s) on workers started by an earlier leader", len(adopted))
            self._ensure_polling()
        return adopted


def target_of(task: Task) -> str:
    """Where a worker finds the task's function: ``module:qualified.name``."""
    func = getattr(task, "func", None)
    if func is None or not callable(func):
        raise ValueError(f"task {task.name!r} has no function a worker could import")
    module, name = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or "<" in name:
        raise ValueError(f"the function of task {task.name!r} cannot be imported by a worker")
    return f"{module}:{name}"


def sendable(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters a worker passes to the function (those it takes), as JSON values."""
    sent = {key: value for key, value in values.items() if not (key.startswith("_") and key.endswith("_"))}
    for key, value in sent.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            kind = type(value).__name__
            raise ValueError(f"parameter {key!r} ({kind}) cannot be sent to a worker") from None
    return sent


def _timeout(session, task: Task) -> float:
    return (task.timeout or session.config.timeout).total_seconds()


def _quietly(call, *args) -> None:
    try:
        call(*args)
    except Exception as exc:
        logger.warning("Forgetting a settled run on a worker failed: %s", exc)
