"""The runs going on: their timeouts and end conditions, terminating them (a task process through
the ``ProcessSupervisor``, an async run by cancelling it, a thread by asking it to stop), and
noticing when a task's last run has ended."""

from __future__ import annotations

from control.engine.processes import GRACE, ProcessSupervisor
from control.engine.remote import RemoteRuns, is_remote

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

from rocketry.core import Task
from rocketry.core.task import TaskRun

logger = logging.getLogger(__name__)


class Runs:
    """``log(task, method, ...)`` logs for a task as the scheduler does; ``ended(name)`` is
    called when a task's last run has ended (an event for the planner)."""

    def __init__(
        self,
        session,
        processes: ProcessSupervisor,
        remote: RemoteRuns,
        *,
        log: Callable[..., None],
        ended: Callable[[str], None],
    ):
        self.session = session
        self.processes = processes
        self.remote = remote
        self._log = log
        self._ended = ended
        self.active: dict[str, Task] = {}  # tasks with runs on their stack
        self._stopped: dict[str, asyncio.Event] = {}  # set when a task's last run ends

    def follow(self, task: Task) -> None:
        """``task`` has runs: look after them until they end."""
        if task._run_stack:
            self.active[task.name] = task

    def forget(self, name: str) -> None:
        self.active.pop(name, None)

    def running_tasks(self) -> Iterator[Task]:
        return (task for task in self.session.tasks if task._run_stack)

    def count_processes(self) -> int:
        return sum(task.count_processes_taken() for task in self.active.values())

    @property
    def n_alive(self) -> int:
        return sum(task.n_alive for task in self.running_tasks())

    async def supervise(self) -> None:
        """Reap, time out and terminate the runs of running tasks."""
        for task in list(self.active.values()):
            self.processes.reap(task)
            task._clean_run_stack()
            await self.check_termination(task)
            task._clean_run_stack()
            if not task._run_stack:
                del self.active[task.name]
                if (stopped := self._stopped.pop(task.name, None)) is not None:
                    stopped.set()
                self._ended(task.name)

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
                await self.terminate(task, run, reason)
            elif not task.permanent and not is_remote(run) and now - run.start > timeout:
                # A run on a worker has its timeout applied there (see RemoteRuns).
                await self.terminate(task, run, "timeout")
        task.force_termination = False

    async def terminate(self, task: Task, run: TaskRun, reason: str) -> None:
        if run.is_process:
            await self.processes.terminate(task, run, reason)
        elif is_remote(run):
            await self.remote.terminate(task, run, reason)
        elif run.is_async:
            run.task.cancel()
            # The task logs its own termination when the cancellation reaches it, unless it
            # had not begun: then its coroutine never ran, and the termination is logged here.
            await asyncio.wait({run.task}, timeout=GRACE)
            if run.task.done() and run.task.cancelled():
                self._log(task, "log_termination", reason=reason, task_run=run)
        elif run.is_thread:
            # Threads cannot be killed: they stop when they poll Rocketry's TerminationFlag.
            run.event_terminate.set()

    async def terminate_task(self, task: Task, reason: str) -> None:
        """Terminate every running run of ``task`` at once (threads are asked to stop)."""
        for run in list(task._run_stack):
            if run.is_alive():
                await self.terminate(task, run, reason)

    async def wait_stopped(self, task: Task, within: float) -> bool:
        """Wait until ``task`` has no run left (False after ``within`` seconds)."""
        if not task.is_alive():
            return True
        stopped = self._stopped.setdefault(task.name, asyncio.Event())
        try:
            await asyncio.wait_for(stopped.wait(), within)
        except TimeoutError:
            return False
        return True

    async def end_all(self, *, within: float, settle_remote: bool = True) -> list[str]:
        """Terminate every run and wait for them all, at most ``within`` seconds; the runs
        still alive then (threads that do not poll their flag) are logged as abandoned.
        Returns the names of their tasks. Runs on workers are not terminated: they go on,
        and the next leader follows them; with ``settle_remote``, those that end meanwhile
        are logged here."""
        deadline = time.monotonic() + within
        if not settle_remote:
            self.remote.let_go_all()
        for task in list(self.running_tasks()):
            for run in list(task._run_stack):
                if run.is_alive() and not is_remote(run):
                    await self.terminate(task, run, "scheduler stopped")
        while self.n_alive and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            await self.remote.poll_once()
            self.processes.receive()
            for task in self.running_tasks():
                self.processes.reap(task)
        self.remote.let_go_all()  # still going on workers: the next leader follows them
        abandoned = []
        for task in self.running_tasks():
            for run in task._run_stack:
                if run.is_alive():
                    abandoned.append(task.name)
                    logger.error(
                        "Task %r did not stop within %.1f s of the stop; abandoning it", task.name, within
                    )
                    self._log(task, "log_termination", reason="abandoned at shutdown", task_run=run)
        return abandoned
