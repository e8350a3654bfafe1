"""ControlScheduler: Rocketry's scheduler loop, made to share an event loop with the API and to scale.

Rocketry's own loop sleeps ``cycle_sleep`` and then checks every task's start condition
in one pass that never yields. This one checks only the tasks that are due (see
``planner``), wakes at once on events (a run request, an edit, a record, a task process
writing to its queue), yields to the API every few milliseconds, and never waits on a
task process or the database on the event loop. Whether a due task starts is decided by
``admission.admit`` (Rocketry's rule, and the overlap policies); task processes are the
``processes.ProcessSupervisor``'s; a task's state comes back from the log by ``restore``.
"""

from __future__ import annotations

from control.engine import lifecycle
from control.engine.admission import (
    Admission,
    Circumstances,
    Condition,
    OverlapPolicies,
    admit,
    admit_request,
)
from control.engine.claims import Claims
from control.engine.planner import CycleTimes, Planner, RecordListener, Verdict, order_key
from control.engine.processes import ProcessSupervisor
from control.engine.remote import RemoteRuns
from control.engine.runs import Runs
from control.eventloop import BoundLoop

import asyncio
import heapq
import logging
import time
from typing import Literal

from rocketry.core import Scheduler, Task
from rocketry.core.hook import _Hooker
from rocketry.exc import SchedulerExit, SchedulerRestart

logger = logging.getLogger(__name__)

State = Literal["created", "starting", "running", "stopping", "stopped", "crashed"]

_SLICE = 0.004  # longest stretch of scheduler work before the API gets the loop back
_IDLE_SLEEP = 1.0  # longest sleep when nothing is due: keeps cycle hooks and clock jumps in check
_SETTLE = 0.05  # a record logged from a task's thread is looked at again after this
_VERDICTS: dict[str, Verdict] = {"buffer": "running", "start": "ran", "replace": "ran"}


class Alone:
    """The gate of a scheduler without replicas: it always launches."""

    shared = False
    leadership = None

    def may_launch(self) -> bool:
        return True

    def launch_delay(self) -> float:
        return 0.0

    def stop(self, *, resign: bool = True) -> None:
        pass


class ControlScheduler(Scheduler):
    """Runs a session's tasks. Differences from Rocketry's loop, besides the above:

    - a stop requested before or during start-up is kept (Rocketry's ``serve`` clears it);
    - nothing a task or a condition does can end the loop; a record of a task that no
      longer exists is still stored;
    - a task process that dies without reporting (killed, ``os._exit``) is logged as
      failed instead of staying "running"; a process that ignores SIGTERM is killed;
    - a stop terminates running tasks and waits for them at most ``shutdown_timeout``;
    - state is restored at start with one query instead of six per task.
    """

    def __init__(self, session, *, shutdown_timeout: float = 7.0):
        super().__init__(session)
        self.shutdown_timeout = shutdown_timeout
        self.state: State = "created"
        self.started_at: float | None = None
        self.n_cycles = 0
        self.n_checks = 0  # start conditions checked, over the scheduler's life
        self.cycles = CycleTimes()
        self.planner = Planner(session, poll_interval=session.config.cycle_sleep)
        self.overlap = OverlapPolicies()
        self.processes = ProcessSupervisor(session, self._log_queue, log=self._log)
        self.remote = RemoteRuns(session, None, log=self._log)  # its store is given by the app
        self.runs = Runs(session, self.processes, self.remote, log=self._log, ended=self._run_ended)
        self.abandoned: list[str] = []
        # With replicas: whether this one may launch (cluster.Coordinator), its claims of
        # starts, and the epoch it leads with once it took over (None while following).
        self.gate = Alone()
        self.claims: Claims | None = None
        self.epoch: int | None = None
        self.queued: set[str] = set()  # process tasks due or asked to run, waiting for a slot
        self._checking: set[str] = set()  # tasks whose check is under way (it may await)
        self.ready = asyncio.Event()  # set once start-up is over and the loop runs
        self._wake: asyncio.Event | None = None
        self._loop = BoundLoop()
        self._listener = RecordListener(self.note_record)

    # -- control (any thread) ----------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self.state == "running"

    def wake(self) -> None:
        """Start the next cycle now."""
        if self._wake is not None:
            self._loop.call(self._wake.set)

    def touch(self, task: Task) -> None:
        """Check ``task`` at once: it was edited, enabled, or asked to run (event loop only)."""
        self.planner.touch(task.name)
        self.wake()

    async def start_now(self, task: Task) -> None:
        """Check ``task`` (which has a run requested) in the caller's turn of the event
        loop rather than the next cycle's: a run request starts before its response goes
        out. Checking is the same as in a cycle; async, thread and process starts do not
        yield, so the scheduler cannot check the same task in between."""
        if not self.is_ready:
            self.touch(task)
            return
        verdict = await self._check(task)
        self.planner.plan(task, now=self.session.get_time(), verdict=verdict)
        self.wake()

    def circumstances(self) -> Circumstances:
        slots = self.session.config.max_process_count
        return Circumstances(
            on_hold=self.on_hold,
            free_slots=slots - self.count_process_tasks_alive(),
            slots=slots,
            leading=self.leading(),
        )

    def leading(self) -> bool:
        """Whether this replica launches tasks now (always, without replicas)."""
        return not self.gate.shared or (self.epoch is not None and self.gate.may_launch())

    def admission(self, task: Task, condition: Condition) -> Admission:
        """What a check of ``task`` would decide now, given its condition's value."""
        policy = self.overlap.effective(task)
        return admit(task, overlap=policy, condition=lambda: condition, now=self.circumstances())

    def refusal(self, task: Task) -> str | None:
        """Why a run request for ``task`` is refused now (409), or None if it is taken."""
        return admit_request(task, overlap=self.overlap.effective(task))

    def set_overlap(self, task: Task, policy: str) -> None:
        self.overlap.set(task, policy)
        self.touch(task)

    async def terminate_now(self, task: Task, reason: str) -> None:
        """Terminate ``task``'s running runs at once (threads are asked to stop)."""
        await self.runs.terminate_task(task, reason)
        self.wake()

    async def wait_stopped(self, task: Task, within: float) -> bool:
        """Wait until ``task`` has no run left (False after ``within`` seconds)."""
        self.wake()
        return await self.runs.wait_stopped(task, within)

    def forget(self, name: str) -> None:
        """``name`` left the session."""
        self.overlap.forget(name)
        self.runs.forget(name)
        self.queued.discard(name)

    def _run_ended(self, name: str) -> None:
        self.planner.note(name)
        self.wake()

    def note_record(self, name: str) -> None:
        self.planner.note(name)
        if self._loop.bound and not self._loop.on_loop_thread():
            # Logged from a task's own thread, which sets the task's cached times and
            # status just after logging: look again once it surely has.
            self._loop.call_later(_SETTLE, self.note_record, name)
        self.wake()

    def request_stop(self) -> None:
        """Ask the loop to end; running tasks are then terminated."""
        self._flag_shutdown.set()
        self.wake()

    # -- the loop ----------------------------------------------------------------------

    def bind_loop(self) -> None:
        """Take the running event loop as this scheduler's (``serve`` does so first)."""
        self._wake = asyncio.Event()
        self._loop.bind()

    async def serve(self) -> None:
        self.bind_loop()
        self._flag_enabled.set()
        self.is_alive = True
        self.state = "starting"
        self.started_at = time.time()
        task_logger = logging.getLogger(self.session.config.task_logger_basename)
        task_logger.addHandler(self._listener)
        reader = self._log_queue._reader.fileno()
        self._loop.loop.add_reader(reader, self._wake.set)  # a task process wrote a record
        exception: BaseException | None = None
        try:
            await self.startup()
            self.state = "running"
            self.ready.set()
            while not self._flag_shutdown.is_set():
                if self.gate.shared and not await self._lead_or_follow():
                    continue
                began = time.perf_counter()
                await self.run_cycle()
                self.cycles.add(time.perf_counter() - began)
                await self._hibernate()
        except BaseException as exc:
            exception = exc
            if not isinstance(exc, asyncio.CancelledError):
                self.logger.critical("Scheduler failed; stopping", exc_info=True)
            raise
        finally:
            self.state = "stopping"
            try:
                await self.shut_down(exception=exception)
            finally:
                self._loop.loop.remove_reader(reader)
                task_logger.removeHandler(self._listener)
                self.is_alive = False
                self.state = "crashed" if exception is not None else "stopped"

    async def _lead_or_follow(self) -> bool:
        """Whether to run a cycle now: take over when elected and the previous leader can
        no longer launch, step down when deposed; otherwise wait for either."""
        leadership = self.gate.leadership
        if leadership is not None and self.epoch != leadership.epoch and self.gate.may_launch():
            await lifecycle.take_over(self, leadership.epoch)
        elif leadership is None and self.epoch is not None:
            await lifecycle.step_down(self)
        if self.leading():
            return True
        await self._wait(self.gate.launch_delay() or _IDLE_SLEEP)
        return False

    @property
    def mean_cycle_seconds(self) -> float | None:
        """Average duration of the cycles of the last 10 seconds."""
        return self.cycles.mean()

    async def _hibernate(self) -> None:
        assert self._wake is not None
        # Give tasks just started, and requests waiting, their turn before the next cycle.
        await asyncio.sleep(0)
        delay = min(self.planner.next_due() - self.session.get_time(), _IDLE_SLEEP)
        if self.runs.active:
            delay = min(delay, self.session.config.cycle_sleep)  # timeouts, end conditions
        await self._wait(delay)

    async def _wait(self, delay: float) -> None:
        """Until ``delay`` seconds pass or something wakes the loop."""
        assert self._wake is not None
        if delay > 0 and not self._wake.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
        self._wake.clear()

    async def run_cycle(self) -> None:
        """Check the due tasks in Rocketry's order (higher priority first), start those
        whose condition holds, then look after the running ones."""
        hooker = _Hooker(self.session.hooks.scheduler_cycle)
        hooker.prerun(scheduler=self)
        self.planner.sync()
        self.processes.receive()
        now = self.session.get_time()
        pending = [(order_key(task), task) for task in self.planner.take_due(now)]
        heapq.heapify(pending)
        queued = {task.name for _, task in pending}
        checked: set[str] = set()
        slice_began = time.perf_counter()
        while pending:
            key, task = heapq.heappop(pending)
            if task.name in checked:
                continue
            checked.add(task.name)
            verdict = await self._check(task)
            self.planner.plan(task, now=now, verdict=verdict)
            if verdict == "ran":
                # Tasks its start makes due are checked in this pass if Rocketry would
                # reach them after it, as its own pass would; the others in the next one.
                for touched in self.planner.take_due(now):
                    later = order_key(touched)
                    if touched.name not in checked and touched.name not in queued and later > key:
                        heapq.heappush(pending, (later, touched))
                        queued.add(touched.name)
                    elif touched.name not in queued or touched.name in checked:
                        self.planner.touch(touched.name, now)
            if time.perf_counter() - slice_began > _SLICE:
                await asyncio.sleep(0)
                slice_began = time.perf_counter()
        await self.runs.supervise()
        self.processes.receive()
        hooker.postrun()
        self.n_cycles += 1

    async def _check(self, task: Task) -> Verdict:
        if task.name in self._checking:
            # Checked right now by the other path (a run request, or a cycle) that is
            # waiting for a replaced run to end; that check decides.
            return "running"
        self._checking.add(task.name)
        try:
            return await self._check_once(task)
        finally:
            self._checking.discard(task.name)

    async def _check_once(self, task: Task) -> Verdict:
        self.n_checks += 1
        admission = admit(
            task,
            overlap=self.overlap.effective(task),
            condition=lambda: Condition(self.check_task_cond(task)),
            now=self.circumstances(),
        )
        decision = admission.decision
        if decision == "no_capacity":
            # It waits for a free process slot, in plain view (status "queued"), if it was
            # asked to run or is due; it is checked again every cycle until then.
            if task.batches or self.check_task_cond(task):
                self.queued.add(task.name)
            return "no_capacity"
        self.queued.discard(task.name)
        if decision == "buffer":
            task.run()  # starts when the current run ends
        elif decision == "replace":
            await self.runs.terminate_task(task, "replaced by a new run")
        if admission.would_start:
            if self.claims is not None and not (await self.claims.take(task) and self.leading()):
                return "on_hold"
            await self.run_task(task)
            task.force_run = False
            self.runs.follow(task)
        return _VERDICTS.get(decision, decision)

    def check_task_cond(self, task: Task) -> bool:
        try:
            return bool(task.is_runnable())
        except Exception:
            logger.exception("Condition of task %r failed", task.name)
            return False

    async def run_task(self, task: Task, *args, **kwargs) -> None:
        try:
            execution = task.get_execution()
            if execution == "process":
                self.processes.start(task)
            elif execution == "celery":
                self.remote.start(task)
            else:
                await super().run_task(task, *args, **kwargs)
        except (SchedulerExit, SchedulerRestart):
            # Rocketry's way for a task to stop the scheduler; a restart is a stop here.
            self.request_stop()
        except Exception:
            logger.exception("Starting task %r failed", task.name)

    # -- running tasks -----------------------------------------------------------------

    def count_process_tasks_alive(self) -> int:
        return self.runs.count_processes()

    @property
    def n_alive(self) -> int:
        return self.runs.n_alive

    def handle_logs(self) -> None:
        """Rocketry's name for storing what task processes sent."""
        self.processes.receive()

    def _log(self, task: Task, method: str, *args, **kwargs) -> None:
        try:
            getattr(task, method)(*args, **kwargs)
        except Exception:
            logger.exception("Logging for task %r failed", task.name)

    # -- start and stop ----------------------------------------------------------------

    async def startup(self) -> None:
        await lifecycle.start_up(self)

    async def shut_down(self, traceback=None, exception=None) -> None:
        await lifecycle.shut_down(self)
