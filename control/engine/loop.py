"""ControlScheduler: Rocketry's scheduler loop, made to share an event loop with the API and to scale.

Rocketry's own loop sleeps ``cycle_sleep`` and then checks every task's start condition
in one pass that never yields. This one checks only the tasks that are due (see
``planner``), wakes at once on events (a run request, an edit, a record, a task process
writing to the queue), yields to the API every few milliseconds, and never waits on a
task process or the database on the event loop. What it decides is Rocketry's: a due task
is checked with Rocketry's own ``Task.is_runnable``.
"""

from __future__ import annotations

from control.engine import children
from control.engine.planner import Planner, Verdict, order_key
from control.stores.base import LogEntry, LogStore, OutputLine

import asyncio
import heapq
import logging
import multiprocessing
import signal
import threading
import time
import weakref
from collections import deque
from queue import Empty
from typing import Literal

from rocketry.core import Scheduler, Task
from rocketry.core.condition import AlwaysFalse
from rocketry.core.hook import _Hooker
from rocketry.core.task import TaskRun
from rocketry.exc import SchedulerExit, SchedulerRestart

logger = logging.getLogger(__name__)

State = Literal["created", "starting", "running", "stopping", "stopped", "crashed"]

_PROCESS_GRACE = 3.0  # seconds a terminated task process gets before it is killed
_SLICE = 0.004  # longest stretch of scheduler work before the API gets the loop back
_IDLE_SLEEP = 1.0  # longest sleep when nothing is due: keeps cycle hooks and clock jumps in check
_SETTLE = 0.05  # a record logged from a task's thread is looked at again after this


class TaskProcessDiedError(RuntimeError):
    """A task's process ended (killed, ``os._exit``) before it reported success or failure."""


class _RecordListener(logging.Handler):
    """Tells the planner about every task record, whichever thread or process logged it."""

    def __init__(self, scheduler: ControlScheduler):
        super().__init__()
        self._scheduler = scheduler

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "task_name", None)
        if name is not None:
            self._scheduler.note_record(name)


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
        self.last_cycle_seconds: float | None = None
        self._recent_cycles: deque[tuple[float, float]] = deque(maxlen=1000)
        self.planner = Planner(session, poll_interval=session.config.cycle_sleep)
        self.abandoned: list[str] = []
        self._overlap: dict[str, str] = {}  # task name -> overlap policy, when not "skip"
        self._active: dict[str, Task] = {}  # tasks with runs on their stack
        self._stopped: dict[str, asyncio.Event] = {}  # set when a task's last run ends
        self._checking: set[str] = set()  # tasks whose check is under way (it may await)
        self.queued: set[str] = set()  # process tasks due or asked to run, waiting for a slot
        self.output = None  # an OutputCapture: runs' prints and logging, per run
        self.ready = asyncio.Event()  # set once start-up is over and the loop runs
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._listener = _RecordListener(self)
        # Process runs whose outcome the scheduler itself logged (terminated or reaped).
        self._settled_runs: weakref.WeakValueDictionary[int, TaskRun] = weakref.WeakValueDictionary()
        # Their run ids, for records their processes still send afterwards (kept bounded).
        self._settled_run_ids: dict[str, None] = {}

    # -- control (any thread) ----------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self.state == "running"

    def wake(self) -> None:
        """Start the next cycle now."""
        if self._wake is None or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
            return
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed
            pass

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

    def overlap_of(self, name: str) -> str:
        return self._overlap.get(name, "skip")

    def set_overlap(self, task: Task, policy: str) -> None:
        """What happens when ``task`` is due while it runs: ``skip``, ``allow`` (side by
        side, Rocketry's multilaunch), ``buffer_one`` (one start waits for the run's end),
        ``replace`` (the running one is terminated first)."""
        if policy == "skip":
            self._overlap.pop(task.name, None)
        else:
            self._overlap[task.name] = policy
        task.multilaunch = True if policy == "allow" else None
        self.touch(task)

    async def terminate_now(self, task: Task, reason: str) -> None:
        """Terminate ``task``'s running runs at once (threads are asked to stop)."""
        for run in list(task._run_stack):
            if run.is_alive():
                await self._terminate_run(task, run, reason)
        self.wake()

    async def wait_stopped(self, task: Task, within: float) -> bool:
        """Wait until ``task`` has no run left (False after ``within`` seconds)."""
        if not task.is_alive():
            return True
        stopped = self._stopped.setdefault(task.name, asyncio.Event())
        self.wake()
        try:
            await asyncio.wait_for(stopped.wait(), within)
        except TimeoutError:
            return False
        return True

    def forget(self, name: str) -> None:
        """``name`` left the session."""
        self._overlap.pop(name, None)
        self._active.pop(name, None)
        self.queued.discard(name)

    def note_record(self, name: str) -> None:
        self.planner.note(name)
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            # Logged from a task's own thread, which sets the task's cached times and
            # status just after logging: look again once it surely has.
            try:
                loop.call_soon_threadsafe(loop.call_later, _SETTLE, self.note_record, name)
            except RuntimeError:
                pass
        self.wake()

    def request_stop(self) -> None:
        """Ask the loop to end; running tasks are then terminated."""
        self._flag_shutdown.set()
        self.wake()

    # -- the loop ----------------------------------------------------------------------

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._flag_enabled.set()
        self.is_alive = True
        self.state = "starting"
        self.started_at = time.time()
        task_logger = logging.getLogger(self.session.config.task_logger_basename)
        task_logger.addHandler(self._listener)
        reader = self._log_queue._reader.fileno()
        self._loop.add_reader(reader, self._wake.set)  # a task process wrote a record
        exception: BaseException | None = None
        try:
            await self.startup()
            self.state = "running"
            self.ready.set()
            while not self._flag_shutdown.is_set():
                began = time.perf_counter()
                await self.run_cycle()
                self._record_cycle(time.perf_counter() - began)
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
                self._loop.remove_reader(reader)
                task_logger.removeHandler(self._listener)
                self.is_alive = False
                self.state = "crashed" if exception is not None else "stopped"

    def _record_cycle(self, seconds: float) -> None:
        self.last_cycle_seconds = seconds
        self._recent_cycles.append((time.monotonic(), seconds))

    @property
    def mean_cycle_seconds(self) -> float | None:
        """Average duration of the cycles of the last 10 seconds."""
        since = time.monotonic() - 10.0
        recent = [seconds for at, seconds in self._recent_cycles if at >= since]
        if not recent:
            return self.last_cycle_seconds
        return sum(recent) / len(recent)

    async def _hibernate(self) -> None:
        assert self._wake is not None
        # Give tasks just started, and requests waiting, their turn before the next cycle.
        await asyncio.sleep(0)
        delay = min(self.planner.next_due() - self.session.get_time(), _IDLE_SLEEP)
        if self._active:
            delay = min(delay, self.session.config.cycle_sleep)  # timeouts, end conditions
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
        self.handle_logs()
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
        await self._supervise()
        self.handle_logs()
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
        if task.on_startup or task.on_shutdown:
            return "not_due"
        if not self._flag_enabled.is_set():
            return "on_hold"
        execution = task.get_execution()
        if execution == "process" and not self.has_free_processors():
            # It waits for a free process slot, in plain view (status "queued"), if it was
            # asked to run or is due; it is checked again every cycle until then.
            if task.batches or task.force_run or self.check_task_cond(task):
                self.queued.add(task.name)
            return "no_capacity"
        self.queued.discard(task.name)
        if execution in ("thread", "async", "process") and task.is_alive():
            verdict = await self._check_overlap(task)
            if verdict is not None:
                return verdict
        elif not self.check_task_cond(task):
            return "not_due"
        await self.run_task(task)
        task.force_run = False
        if task._run_stack:
            self._active[task.name] = task
        return "ran"

    async def _check_overlap(self, task: Task) -> Verdict | None:
        """A due check of a task that is running: None means start it now."""
        policy = self._overlap.get(task.name)
        if policy is None and task.multilaunch:
            policy = "allow"
        if policy in (None, "skip"):
            return "running"  # its end is an event: checked again then
        if policy == "buffer_one" and task.batches:
            return "running"  # one start already waits for the end
        if not self.check_task_cond(task):
            return "not_due"  # keep following its condition while it runs
        if policy == "buffer_one":
            task.run()  # starts when the current run ends
            return "running"
        if policy == "replace":
            for run in list(task._run_stack):
                if run.is_alive():
                    await self._terminate_run(task, run, "replaced by a new run")
        return None

    def check_task_cond(self, task: Task) -> bool:
        try:
            return bool(task.is_runnable())
        except Exception:
            logger.exception("Condition of task %r failed", task.name)
            return False

    async def run_task(self, task: Task, *args, **kwargs) -> None:
        try:
            if task.get_execution() == "process":
                self._start_process(task)
            else:
                await super().run_task(task, *args, **kwargs)
        except (SchedulerExit, SchedulerRestart):
            # Rocketry's way for a task to stop the scheduler; a restart is a stop here.
            self.request_stop()
        except Exception:
            logger.exception("Starting task %r failed", task.name)

    def _start_process(self, task: Task) -> None:
        """Start a process run without waiting for the child's first record.

        Rocketry's ``run_as_process`` blocks the event loop until the child reports that
        it runs (up to 10 s, forever for a child that dies first). Here the run is on the
        task's run stack at once, so the task counts as running; the child's records
        arrive through the queue like any other, and ``_reap_processes`` covers a child
        that dies before it reports. The fork happens on the event loop's thread, which
        lives as long as the service: the child's parent-death signal is tied to it.
        """
        session = self.session
        run = TaskRun(start=session.get_time(), task=None)
        try:
            task.force_run = False
            params = task.get_extra_params(None, execution="process")
            direct = task._get_direct_params()
            run.run_id = task.get_run_id(run, params=params | direct)
            process = multiprocessing.Process(
                target=task._run_as_process,
                kwargs={
                    "params": params.pre_materialize(task=task, session=session),
                    "direct_params": direct.pre_materialize(task=task, session=session),
                    "task_run": run,
                    "queue": self._log_queue,
                    "config": session.config,
                    "exec_hooks": task._get_hooks("task_execute"),
                },
                daemon=task.daemon if task.daemon is not None else session.config.tasks_as_daemon,
            )
            run.task = process
            if self.output is not None:
                with self.output.forking(task.name, run.run_id):
                    process.start()
            else:
                process.start()
        except Exception:
            if run.run_id is None:
                run.run_id = task.get_run_id(run)
            self._log(task, "log_running", run)
            self._log(task, "log_failure", run)
            raise
        task._run_stack.append(run)

    # -- running tasks -----------------------------------------------------------------

    async def _supervise(self) -> None:
        """Reap, time out and terminate the runs of running tasks; a task whose runs all
        ended is an event for the planner."""
        for task in list(self._active.values()):
            self._reap_processes(task)
            task._clean_run_stack()
            await self.check_termination(task)
            task._clean_run_stack()
            if not task._run_stack:
                del self._active[task.name]
                self.planner.note(task.name)
                if (stopped := self._stopped.pop(task.name, None)) is not None:
                    stopped.set()
                self.wake()

    async def check_termination(self, task: Task) -> None:
        """Terminate the runs of ``task`` that were asked to stop, met their end
        condition or ran past their timeout."""
        if not task._run_stack and not task.force_termination:
            return
        reason = None
        if task.force_termination:
            reason = "terminated on request"
        else:
            try:
                if task.end_cond.observe(task=task, session=self.session):
                    reason = "end condition is true"
            except Exception:
                logger.exception("End condition of task %r failed", task.name)
        timeout = (task.timeout or self.session.config.timeout).total_seconds()
        now = self.session.get_time()
        for run in list(task._run_stack):
            if not run.is_alive():
                continue
            if reason is not None:
                await self._terminate_run(task, run, reason)
            elif not task.permanent and now - run.start > timeout:
                await self._terminate_run(task, run, "timeout")
        task.force_termination = False

    async def _terminate_run(self, task: Task, run: TaskRun, reason: str) -> None:
        if run.is_process:
            process = run.task
            process.terminate()
            children.signal_group(process.pid, signal.SIGTERM)
            if not await _joined(process, _PROCESS_GRACE):
                logger.warning("Task %r ignored SIGTERM; killing its process", task.name)
                process.kill()
                await _joined(process, _PROCESS_GRACE)
            children.end_group(process.pid)
            self._settle(run)
            self._log(task, "log_termination", reason=reason, task_run=run)
        elif run.is_async:
            run.task.cancel()
            # The task logs its own termination when the cancellation reaches it, unless it
            # had not begun: then its coroutine never ran, and the termination is logged here.
            await asyncio.wait({run.task}, timeout=_PROCESS_GRACE)
            if run.task.done() and run.task.cancelled():
                self._log(task, "log_termination", reason=reason, task_run=run)
        elif run.is_thread:
            # Threads cannot be killed: they stop when they poll Rocketry's TerminationFlag.
            run.event_terminate.set()

    async def terminate_all(self, reason: str | None = None) -> None:
        for task in list(self._running_tasks()):
            for run in list(task._run_stack):
                if run.is_alive():
                    await self._terminate_run(task, run, reason or "scheduler stopped")

    def _running_tasks(self):
        return (task for task in self.session.tasks if task._run_stack)

    def count_process_tasks_alive(self) -> int:
        return sum(task.count_processes_taken() for task in self._active.values())

    @property
    def n_alive(self) -> int:
        return sum(task.n_alive for task in self._running_tasks())

    def _settle(self, run: TaskRun) -> None:
        """The scheduler logs this run's outcome itself (terminated or died)."""
        self._settled_runs[id(run)] = run
        if run.run_id is not None:
            self._settled_run_ids[run.run_id] = None
            if len(self._settled_run_ids) > 10_000:
                del self._settled_run_ids[next(iter(self._settled_run_ids))]

    def _reap_processes(self, task: Task) -> None:
        """End what ended task processes left running, and log a failure for those that
        ended without reporting an outcome."""
        for run in task._run_stack:
            if not run.is_process or run.is_alive():
                continue
            # The run leaves the stack in this pass; what it started must not outlive it.
            children.end_group(run.task.pid)
            if self._settled_runs.get(id(run)) is run:
                continue
            code = run.task.exitcode
            if code == 0 or code is None:
                continue  # the process logged its own outcome before exiting
            self.handle_logs()  # its last records may still be in the queue
            self._settle(run)
            if task._last_run is None or task._last_run < run.start:
                self._log(task, "log_running", run)  # the child died before it said so
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            try:
                # Raised so that the failure record carries it as its exception text.
                raise TaskProcessDiedError(f"the task's process {how} without reporting an outcome")
            except TaskProcessDiedError:
                self._log(task, "log_failure", run)

    # -- logs --------------------------------------------------------------------------

    def handle_logs(self) -> None:
        """Store the records task processes sent, as Rocketry does, but never fail."""
        queue = self._log_queue
        while True:
            try:
                record = queue.get(block=False)
            except Empty:
                return
            except (OSError, ValueError, EOFError):
                logger.exception("Reading the task process queue failed")
                return
            if isinstance(record, OutputLine):
                if self.output is not None:
                    self.output.sink(record)
                continue
            task = self.session.tasks.find(record.task_name)
            if getattr(record, "run_id", None) in self._settled_run_ids:
                # A late record of a run whose outcome is already logged: kept in the log,
                # but it must not make the task look running again.
                task = None
            if record.action == "fail":
                # The process already formatted the traceback into exc_text.
                record.exc_info = record.exc_text
            elif record.action == "success":
                value = record.__dict__.pop("__return__", None)
                if task is not None:
                    task._handle_return(value)
            if task is None:
                logging.getLogger(self.session.config.task_logger_basename).handle(record)
            else:
                self._log(task, "log_record", record)

    def _log(self, task: Task, method: str, *args, **kwargs) -> None:
        try:
            getattr(task, method)(*args, **kwargs)
        except Exception:
            logger.exception("Logging for task %r failed", task.name)

    # -- start and stop ----------------------------------------------------------------

    async def startup(self) -> None:
        hooker = _Hooker(self.session.hooks.scheduler_startup)
        hooker.prerun(scheduler=self)
        self.n_cycles = 0
        self.startup_time = self.session._get_datetime_now()
        try:
            await self._restore()
        except Exception:
            logger.exception("Restoring the tasks' state from the log failed")
        for task in sorted(self.session.tasks, key=order_key):
            if task.on_startup:
                if not task.disabled and isinstance(task.start_cond, AlwaysFalse):
                    task.run()
                if await self._check_startup_task(task):
                    self._active[task.name] = task
        hooker.postrun()
        self.logger.info("Startup complete.")

    async def _check_startup_task(self, task: Task) -> bool:
        try:
            if self.is_task_runnable(task):
                await self.run_task(task)
        except Exception:
            logger.exception("Start-up task %r failed", task.name)
        return bool(task._run_stack)

    async def _restore(self) -> None:
        """Each task's last run/success/fail... from the log, as Rocketry's ``set_cached``
        does, and a ``crash`` record for every run the log shows started and never ended
        (the service died meanwhile), each with that run's id."""
        repo = self.session.get_repo()
        if not isinstance(repo, LogStore):
            for task in list(self.session.tasks):
                self._log(task, "set_cached")
                await asyncio.sleep(0)
            return
        latest = await asyncio.to_thread(repo.latest_actions)
        # No run of this scheduler has started yet: every run before now is in the log.
        checked_until = self.session.get_time()
        unfinished: dict[str, list[LogEntry]] = {}
        for entry in await asyncio.to_thread(repo.unfinished_runs):
            unfinished.setdefault(entry.task_name, []).append(entry)
        slice_began = time.perf_counter()
        for task in list(self.session.tasks):
            times = latest.get(task.name, {})
            for action in ("run", "success", "fail", "terminate", "inaction", "crash"):
                setattr(task, f"_last_{action}", times.get(action))
            cut_short = unfinished.pop(task.name, [])
            for entry in cut_short:
                self._log_crash(task.name, entry, task=task)
            if times and not cut_short:
                status = max(times, key=times.get)
                if status == "run":
                    self._log(task, "log_crash")  # a record from before runs had ids
                else:
                    task.status = status
            if time.perf_counter() - slice_began > _SLICE:
                await asyncio.sleep(0)
                slice_began = time.perf_counter()
        for name, entries in unfinished.items():  # tasks deleted since: their history says so too
            for entry in entries:
                self._log_crash(name, entry)
        await asyncio.to_thread(repo.mark_runs_checked, checked_until)

    def _log_crash(self, name: str, run: LogEntry, *, task: Task | None = None) -> None:
        """Log that the run ``run`` started and was cut short by the service's end."""
        now = self.session.get_time()
        start = run.start if run.start is not None else run.created
        extra = {
            "task_name": name,
            "action": "crash",
            "start": start,
            "end": now,
            "runtime": max(0.0, now - start),
            "run_id": run.run_id,
        }
        try:
            logging.getLogger(self.session.config.task_logger_basename).info(
                "Task '%s' crashed (the service stopped while it ran)", name, extra=extra
            )
        except Exception:
            logger.exception("Logging the crash of a run of %r failed", name)
            return
        if task is not None:
            task._last_crash = now
            task.status = "crash"

    async def shut_down(self, traceback=None, exception=None) -> None:
        hooker = _Hooker(self.session.hooks.scheduler_shutdown)
        hooker.prerun(scheduler=self)
        deadline = time.monotonic() + self.shutdown_timeout
        self._report_never_started()
        try:
            try:
                await self.run_shutdown_tasks()
            except Exception:
                logger.exception("Shutdown tasks failed")
            await self.terminate_all(reason="scheduler stopped")
            await self._wait_runs_end(deadline)
            self.handle_logs()
        finally:
            hooker.postrun()
            self.logger.info("Scheduler stopped")

    def _report_never_started(self) -> None:
        """Say which requested or queued runs the stop drops (they are not kept)."""
        for task in self.session.tasks:
            if task.name in self.queued or task.batches or task.force_run:
                why = "waited for a free process slot" if task.name in self.queued else "waited to start"
                logger.warning("Task %r never started: it %s when the scheduler stopped", task.name, why)

    async def _wait_runs_end(self, deadline: float) -> None:
        while self.n_alive and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            self.handle_logs()
            for task in self._running_tasks():
                self._reap_processes(task)
        for task in self._running_tasks():
            for run in task._run_stack:
                if run.is_alive():
                    self.abandoned.append(task.name)
                    logger.error(
                        "Task %r did not stop within %.1f s of the stop; abandoning it",
                        task.name,
                        self.shutdown_timeout,
                    )
                    self._log(task, "log_termination", reason="abandoned at shutdown", task_run=run)


async def _joined(process, grace: float) -> bool:
    """Wait for a process to end without blocking the event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    ended = asyncio.Event()
    loop.add_reader(process.sentinel, ended.set)
    try:
        await asyncio.wait_for(ended.wait(), grace)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(process.sentinel)
    # The sentinel is readable once the child has closed its files, a moment before the
    # kernel lets it be reaped: ask again until then, rather than call it alive.
    process.join(0)
    while process.is_alive() and ended.is_set() and loop.time() < deadline:
        await asyncio.sleep(0.002)
        process.join(0)
    return not process.is_alive()
