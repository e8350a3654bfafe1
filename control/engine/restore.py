"""Each task's state back from the log at start: its latest run, success, failure... (what
Rocketry's ``set_cached`` does, in one query for every task), and a ``crash`` record for every
run the log shows started and never ended, because the service died meanwhile."""

from __future__ import annotations

from control.actions import ACTIONS
from control.stores.base import LogEntry, LogStore

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from rocketry.core import Task

logger = logging.getLogger(__name__)

_SLICE = 0.004  # longest stretch of work before the API gets the loop back


async def restore(
    session,
    *,
    log: Callable[..., None],
    settle: bool = True,
    adopt: Callable[[list[LogEntry]], Awaitable[set[str]]] | None = None,
) -> None:
    """Restore every task of ``session`` from its log store; ``log(task, method, ...)`` logs
    for a task as the scheduler does. With ``settle``, runs the log shows cut short get
    their crash record, except those ``adopt`` follows on (runs on workers, which go on
    without the service); without (a replica that does not lead), only the state is read."""
    repo = session.get_repo()
    if not isinstance(repo, LogStore):
        for task in list(session.tasks):
            log(task, "set_cached")
            await asyncio.sleep(0)
        return
    latest = await asyncio.to_thread(repo.latest_actions)
    # No run of this scheduler has started yet: every run before now is in the log.
    checked_until = session.get_time()
    unfinished: dict[str, list[LogEntry]] = {}
    entries = await asyncio.to_thread(repo.unfinished_runs) if settle else []
    adopted = await adopt(entries) if adopt is not None and entries else set()
    for entry in entries:
        if entry.run_id not in adopted:
            unfinished.setdefault(entry.task_name, []).append(entry)
    slice_began = time.perf_counter()
    for task in list(session.tasks):
        times = latest.get(task.name, {})
        for action in ACTIONS:
            setattr(task, f"_last_{action}", times.get(action))
        cut_short = unfinished.pop(task.name, [])
        for entry in cut_short:
            log_crash(session, task.name, entry, task=task)
        if any(run.is_alive() for run in task._run_stack):
            task.status = "run"  # adopted: it runs on a worker
        elif times and not cut_short:
            status = max(times, key=times.get)
            if status == "run" and settle:
                log(task, "log_crash")  # a record from before runs had ids
            else:
                task.status = status
        if time.perf_counter() - slice_began > _SLICE:
            await asyncio.sleep(0)
            slice_began = time.perf_counter()
    for name, entries in unfinished.items():  # tasks deleted since: their history says so too
        for entry in entries:
            log_crash(session, name, entry)
    if settle:
        await asyncio.to_thread(repo.mark_runs_checked, checked_until)


def log_crash(session, name: str, run: LogEntry, *, task: Task | None = None) -> None:
    """Log that the run ``run`` started and was cut short by the service's end."""
    now = session.get_time()
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
        logging.getLogger(session.config.task_logger_basename).info(
            "Task '%s' crashed (the service stopped while it ran)", name, extra=extra
        )
    except Exception:
        logger.exception("Logging the crash of a run of %r failed", name)
        return
    if task is not None:
        task._last_crash = now
        task.status = "crash"


def log_claimed_crash(session, name: str, run_id: str, started: float) -> None:
    """Log a start an earlier leader claimed and never logged (it died first) as a run
    that crashed, so that the task's conditions count that start."""
    try:
        logging.getLogger(session.config.task_logger_basename).info(
            "Task '%s' started",
            name,
            extra={"task_name": name, "action": "run", "start": started, "run_id": run_id},
        )
    except Exception:
        logger.exception("Logging a claimed start of %r failed", name)
        return
    log_crash(
        session, name, LogEntry(task_name=name, action="run", created=started, run_id=run_id, start=started)
    )
