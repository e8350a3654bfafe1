"""Task processes: started without waiting for them, ended together with what they started, and
reaped when they die without a word; the records they send are stored as Rocketry would.

A forked task process inherits the server's signal handlers and process group. At fork it
gets default SIGTERM (so that terminating it works), ignores SIGINT (Ctrl+C reaches the
whole group; the scheduler, not the terminal, ends task processes), dies with the service
(a parent-death signal), and makes a process group of its own, so that whatever it starts
(``sh -c ...``) is ended with it.
"""

from __future__ import annotations

from control.stores.base import OutputLine

import asyncio
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import weakref
from collections.abc import Callable
from queue import Empty

from rocketry.core import Task
from rocketry.core.task import TaskRun

logger = logging.getLogger(__name__)

GRACE = 3.0  # seconds a terminated task process gets before it is killed
_PR_SET_PDEATHSIG = 1


class TaskProcessDiedError(RuntimeError):
    """A task's process ended (killed, ``os._exit``) before it reported success or failure."""


def _reset_in_child() -> None:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread of the child
        pass
    # If the service is killed outright, its task processes go with it instead of running
    # on as orphans that still hold the listening socket.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@functools.cache
def install() -> None:
    """Prepare every later fork of this process as above; idempotent."""
    os.register_at_fork(after_in_child=_reset_in_child)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to what the task process ``pid`` started (its process group)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (or was never made: the child had only just started)


class ProcessSupervisor:
    """Starts, ends and reaps a session's task processes; ``log(task, method, ...)`` logs
    for a task as the scheduler does (never raising)."""

    def __init__(self, session, queue, *, log: Callable[..., None]):
        self.session = session
        self.queue = queue  # Rocketry's multiprocessing queue: what the processes send
        self.output = None  # an OutputCapture, which the processes' output lines go to
        self._log = log
        # Runs whose outcome the scheduler itself logged (terminated or reaped), and their
        # run ids, for records their processes still send afterwards (kept bounded).
        self._settled: weakref.WeakValueDictionary[int, TaskRun] = weakref.WeakValueDictionary()
        self._settled_ids: dict[str, None] = {}

    def start(self, task: Task) -> None:
        """Start a process run without waiting for the child's first record.

        Rocketry's ``run_as_process`` blocks the event loop until the child reports that
        it runs (up to 10 s, forever for a child that dies first). Here the run is on the
        task's run stack at once, so the task counts as running; the child's records
        arrive through the queue like any other, and ``reap`` covers a child that dies
        before it reports. The fork happens on the event loop's thread, which lives as long
        as the service: the child's parent-death signal is tied to it.
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
                    "queue": self.queue,
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

    async def terminate(self, task: Task, run: TaskRun, reason: str) -> None:
        """End a process run and what it started: SIGTERM, SIGKILL after ``GRACE``."""
        process = run.task
        process.terminate()
        signal_group(process.pid, signal.SIGTERM)
        if not await _joined(process, GRACE):
            logger.warning("Task %r ignored SIGTERM; killing its process", task.name)
            process.kill()
            await _joined(process, GRACE)
        signal_group(process.pid, signal.SIGKILL)
        self._settle(run)
        self._log(task, "log_termination", reason=reason, task_run=run)

    def reap(self, task: Task) -> None:
        """End what ended task processes left running, and log a failure for those that
        ended without reporting an outcome."""
        for run in task._run_stack:
            if not run.is_process or run.is_alive():
                continue
            # The run leaves the stack in this pass; what it started must not outlive it.
            signal_group(run.task.pid, signal.SIGKILL)
            if self._settled.get(id(run)) is run:
                continue
            code = run.task.exitcode
            if code == 0 or code is None:
                continue  # the process logged its own outcome before exiting
            self.receive()  # its last records may still be in the queue
            self._settle(run)
            if task._last_run is None or task._last_run < run.start:
                self._log(task, "log_running", run)  # the child died before it said so
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            try:
                # Raised so that the failure record carries it as its exception text.
                raise TaskProcessDiedError(f"the task's process {how} without reporting an outcome")
            except TaskProcessDiedError:
                self._log(task, "log_failure", run)

    def receive(self) -> None:
        """Store the records task processes sent, as Rocketry does, but never fail."""
        queue = self.queue
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
            if getattr(record, "run_id", None) in self._settled_ids:
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

    def _settle(self, run: TaskRun) -> None:
        """The scheduler logs this run's outcome itself (terminated or died)."""
        self._settled[id(run)] = run
        if run.run_id is not None:
            self._settled_ids[run.run_id] = None
            if len(self._settled_ids) > 10_000:
                del self._settled_ids[next(iter(self._settled_ids))]


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
