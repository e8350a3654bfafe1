"""The scheduler's start and stop: state back from the log and start-up tasks; shutdown tasks,
runs terminated (within the shutdown timeout) and what never started said. With replicas,
also the start and end of launching: taking over from an earlier leader, and stepping down."""

from __future__ import annotations

from control.engine import restore
from control.engine.planner import order_key
from control.stores.base import LogStore

import asyncio
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
        # With replicas, runs cut short are settled by whichever replica leads (take_over).
        await restore.restore(
            session, log=scheduler._log, settle=not scheduler.gate.shared, adopt=scheduler.remote.adopt
        )
    except Exception:
        logger.exception("Restoring the tasks' state from the log failed")
    leadership = scheduler.gate.leadership
    if not scheduler.gate.shared and leadership is not None:
        scheduler.epoch = leadership.epoch  # alone, it leads from the start
        if isinstance(session.get_repo(), LogStore):
            session.get_repo().stamp(leadership.epoch)
    if scheduler.remote.used():
        scheduler.remote.connect()  # so that /health says at once whether the broker is there
    if scheduler.gate.shared:
        hooker.postrun()
        scheduler.logger.info("Startup complete; following until this replica leads.")
        return
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


async def take_over(scheduler: ControlScheduler, epoch: int) -> None:
    """Lead with ``epoch`` (the previous leader no longer launches): records carry the
    epoch; starts the previous leader claimed and never logged, and runs it left without
    an outcome, are logged as crashed; the state is read again; every task is checked."""
    session = scheduler.session
    repo = session.get_repo()
    if isinstance(repo, LogStore):
        repo.stamp(epoch)
    if scheduler.claims is not None:
        await scheduler.claims.take_over(epoch, crashed=lambda *run: restore.log_claimed_crash(session, *run))
        if isinstance(repo, LogStore):
            await asyncio.to_thread(repo.flush, 5.0)  # read back below
    await restore.restore(session, log=scheduler._log, adopt=scheduler.remote.adopt)
    scheduler.epoch = epoch
    for task in session.tasks:
        scheduler.planner.touch(task.name)
    scheduler.logger.info("Leading from epoch %d", epoch)


async def step_down(scheduler: ControlScheduler) -> None:
    """No longer lead: end what runs here (the next leader logs it as crashed, or has)."""
    scheduler.epoch = None
    _report_never_started(scheduler)
    for task in scheduler.session.tasks:
        task.batches.clear()
        task.force_run = False
    scheduler.queued.clear()
    # Deposed: another replica leads, and follows the runs on workers from now.
    scheduler.abandoned += await scheduler.runs.end_all(
        within=scheduler.shutdown_timeout, settle_remote=False
    )
    scheduler.processes.receive()
    scheduler.logger.warning("No longer leading: following")


async def shut_down(scheduler: ControlScheduler) -> None:
    hooker = _Hooker(scheduler.session.hooks.scheduler_shutdown)
    hooker.prerun(scheduler=scheduler)
    # Nothing is launched any more: another replica may take over at once.
    leading, scheduler.epoch = scheduler.epoch, None
    try:
        await asyncio.to_thread(scheduler.gate.stop, resign=True)
    except Exception:
        logger.exception("Giving up the leadership failed (it ends with the connection)")
    if scheduler.gate.shared and leading is None:
        scheduler.remote.close()
        hooker.postrun()
        scheduler.logger.info("Scheduler stopped")
        return
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
        scheduler.remote.close()
        hooker.postrun()
        scheduler.logger.info("Scheduler stopped")


def _report_never_started(scheduler: ControlScheduler) -> None:
    """Say which requested or queued runs the stop drops (they are not kept)."""
    for task in scheduler.session.tasks:
        queued = task.name in scheduler.queued
        if queued or task.batches or task.force_run:
            why = "waited for a free process slot" if queued else "waited to start"
            logger.warning("Task %r never started: it %s when the scheduler stopped", task.name, why)
