"""ControlScheduler: Rocketry's scheduler loop, made safe to share an event loop with the API."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
import weakref
from queue import Empty
from typing import Literal

from rocketry.core import Scheduler, Task
from rocketry.core.hook import _Hooker
from rocketry.core.task import TaskRun
from rocketry.exc import SchedulerExit, SchedulerRestart

logger = logging.getLogger(__name__)

State = Literal["created", "starting", "running", "stopping", "stopped", "crashed"]

_PROCESS_GRACE = 3.0  # seconds a terminated task process gets before it is killed


class TaskProcessDiedError(RuntimeError):
    """A task's process ended (killed, ``os._exit``) before it reported success or failure."""


class ControlScheduler(Scheduler):
    """Runs a session's tasks like Rocketry's own loop, with these differences:

    - it can be woken at once (run now, enable, edits) instead of waiting for the next cycle;
    - a stop requested before or during start-up is kept (Rocketry's ``serve`` clears it);
    - nothing a task or a condition does can end the loop; a log record of a task that no
      longer exists is still stored;
    - a task process that dies without reporting (killed, ``os._exit``) is logged as failed
      instead of staying "running"; a terminated process that ignores SIGTERM is killed;
    - a stop terminates running tasks and waits for them at most ``shutdown_timeout``.
    """

    def __init__(self, session, *, shutdown_timeout: float = 7.0):
        super().__init__(session)
        self.shutdown_timeout = shutdown_timeout
        self.state: State = "created"
        self.started_at: float | None = None
        self.n_cycles = 0
        self.last_cycle_seconds: float | None = None
        self.mean_cycle_seconds: float | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Process runs whose outcome the scheduler itself logged (terminated or reaped).
        self._settled_runs: weakref.WeakValueDictionary[int, TaskRun] = weakref.WeakValueDictionary()
        self.abandoned: list[str] = []

    # -- control -----------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self.state == "running"

    def wake(self) -> None:
        """Start the next cycle now (safe from any thread)."""
        if self._wake is None or self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed
            pass

    def request_stop(self) -> None:
        """Ask the loop to end; running tasks are then terminated."""
        self._flag_shutdown.set()
        self.wake()

    async def _hibernate(self) -> None:
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), self.session.config.cycle_sleep)
        except TimeoutError:
            pass
        self._wake.clear()

    # -- the loop ----------------------------------------------------------------------

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._flag_enabled.set()
        self.is_alive = True
        self.state = "starting"
        self.started_at = time.time()
        exception: BaseException | None = None
        try:
            await self.startup()
            self.state = "running"
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
                self.is_alive = False
                self.state = "crashed" if exception is not None else "stopped"

    def _record_cycle(self, seconds: float) -> None:
        self.last_cycle_seconds = seconds
        mean = self.mean_cycle_seconds
        # Exponential average over roughly the last 20 cycles.
        self.mean_cycle_seconds = seconds if mean is None else mean + (seconds - mean) / 20

    async def run_cycle(self) -> None:
        hooker = _Hooker(self.session.hooks.scheduler_cycle)
        hooker.prerun(scheduler=self)
        self.handle_logs()
        for task in self.tasks:
            self._reap_processes(task)
            task._clean_run_stack()
            if task.on_startup or task.on_shutdown:
                continue
            if self._flag_enabled.is_set() and self.is_task_runnable(task):
                await self.run_task(task)
                task.force_run = False
            await self.check_termination(task)
        self.handle_logs()
        hooker.postrun()
        self.n_cycles += 1

    def is_task_runnable(self, task: Task) -> bool:
        try:
            return super().is_task_runnable(task)
        except Exception:
            # check_task_cond already logged it when conditions are silenced; this
            # covers the checks made around it.
            logger.exception("Checking whether task %r can run failed", task.name)
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
        that dies before it reports.
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
            process.start()
        except Exception:
            if run.run_id is None:
                run.run_id = task.get_run_id(run)
            self._log(task, "log_running", run)
            self._log(task, "log_failure", run)
            raise
        task._run_stack.append(run)

    # -- termination -------------------------------------------------------------------

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
            if not await _joined(process, _PROCESS_GRACE):
                logger.warning("Task %r ignored SIGTERM; killing its process", task.name)
                process.kill()
                await _joined(process, _PROCESS_GRACE)
            self._settled_runs[id(run)] = run
            self._log(task, "log_termination", reason=reason, task_run=run)
        elif run.is_async:
            run.task.cancel()
            # The task logs its own termination when the cancellation reaches it.
            await asyncio.wait({run.task}, timeout=_PROCESS_GRACE)
        elif run.is_thread:
            # Threads cannot be killed: they stop when they poll Rocketry's TerminationFlag.
            run.event_terminate.set()

    async def terminate_all(self, reason: str | None = None) -> None:
        for task in self.tasks:
            for run in list(task._run_stack):
                if run.is_alive():
                    await self._terminate_run(task, run, reason or "scheduler stopped")

    def _reap_processes(self, task: Task) -> None:
        """Log a failure for task processes that ended without reporting an outcome."""
        for run in task._run_stack:
            if not run.is_process or run.is_alive() or self._settled_runs.get(id(run)) is run:
                continue
            code = run.task.exitcode
            if code == 0 or code is None:
                continue  # the process logged its own outcome before exiting
            self._settled_runs[id(run)] = run
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
            task = self.session.tasks.find(record.task_name)
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
        try:
            await super().startup()
        except Exception:
            logger.exception("Scheduler start-up hooks failed")

    async def shut_down(self, traceback=None, exception=None) -> None:
        hooker = _Hooker(self.session.hooks.scheduler_shutdown)
        hooker.prerun(scheduler=self)
        deadline = time.monotonic() + self.shutdown_timeout
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

    async def _wait_runs_end(self, deadline: float) -> None:
        while self.n_alive and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            self.handle_logs()
            for task in self.tasks:
                self._reap_processes(task)
        for task in self.tasks:
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
    ended = asyncio.Event()
    loop.add_reader(process.sentinel, ended.set)
    try:
        await asyncio.wait_for(ended.wait(), grace)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(process.sentinel)
    process.join(0)
    return not process.is_alive()
