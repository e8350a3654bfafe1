"""The scheduler's start and stop: state back from the log and start-up tasks; shutdown tasks,
runs terminated (within the shutdown timeout) and what never started said."""

from __future__ import annotations

from control.engine import restore
from control.engine.planner import order_key

import logging
import time
from typing import TYPE_CHECKING

from rocketry.core import Task
from rocketry.core.condition import AlwaysFalse
from rocketry.core.hook import _Hooker

if TYPE_CHECKING:
    from control.engine.loop import ControlScheduler

logger = logging.getLogger(__name__)


async def start_up(scheduler: ControlScheduler) -> None:
    session = scheduler.session
    hooker = _Hooker(session.hooks.scheduler_startup)
    hooker.prerun(scheduler=scheduler)
    scheduler.n_cycles = 0
    scheduler.startup_time = session._get_datetime_now()
    try:
        await restore.restore(session, log=scheduler._log)
    except Exception:
        logger.exception("Restoring the tasks' state from the log failed")
    for task in sorted(session.tasks, key=order_key):
        if task.on_startup:
            if not task.disabled and isinstance(task.start_cond, AlwaysFalse):
                task.run()
            await _run_startup_task(scheduler, task)
    hooker.postrun()
    scheduler.logger.info("Startup complete.")


async def _run_startup_task(scheduler: ControlScheduler, task: Task) -> None:
    try:
        if scheduler.is_task_runnable(task):
            await scheduler.run_task(task)
    except Exception:
        logger.exception("Start-up task %r failed", task.name)
    scheduler.runs.follow(task)


async def shut_down(scheduler: ControlScheduler) -> None:
    hooker = _Hooker(scheduler.session.hooks.scheduler_shutdown)
    hooker.prerun(scheduler=scheduler)
    deadline = time.monotonic() + scheduler.shutdown_timeout
    _report_never_started(scheduler)
    try:
        try:
            await scheduler.run_shutdown_tasks()
        except Exception:
            logger.exception("Shutdown tasks failed")
        scheduler.abandoned += await scheduler.runs.end_all(within=max(0.0, deadline - time.monotonic()))
        scheduler.processes.receive()
    finally:
        hooker.postrun()
        scheduler.logger.info("Scheduler stopped")


def _report_never_started(scheduler: ControlScheduler) -> None:
    """Say which requested or queued runs the stop drops (they are not kept)."""
    for task in scheduler.session.tasks:
        queued = task.name in scheduler.queued
        if queued or task.batches or task.force_run:
            why = "waited for a free process slot" if queued else "waited to start"
            logger.warning("Task %r never started: it %s when the scheduler stopped", task.name, why)
