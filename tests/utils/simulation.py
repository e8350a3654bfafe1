"""Runs a set of tasks over a simulated clock, either with Rocketry's own scheduler pass
(every task checked every cycle) or with ControlScheduler's (only due tasks checked), and
returns when each task started, so the two can be compared exactly."""

from control.engine.loop import ControlScheduler
from control.engine.session import ControlSession
from control.stores.sql import open_stores

import asyncio
import contextlib
import datetime
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from rocketry import Rocketry
from rocketry.core import Scheduler


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Spec:
    name: str
    start_cond: str
    priority: int
    fails_one_in: int = 0  # fail at about one tick in this many, chosen by a hash


def _fails(spec: Spec, now: float) -> bool:
    if not spec.fails_one_in:
        return False
    digest = hashlib.sha256(f"{spec.name}@{now}".encode()).digest()
    return digest[0] % spec.fails_one_in == 0


@contextlib.contextmanager
def _records_on(clock: Clock, logger_name: str):
    # Rocketry dates records with its time function only once per process (it marks the
    # logger); a simulation dates them itself and puts the logger back afterwards.
    task_logger = logging.getLogger(logger_name)
    original = task_logger.makeRecord

    def make_record(*args, **kwargs):
        record = original(*args, **kwargs)
        record.created = clock()
        return record

    task_logger.makeRecord = make_record
    try:
        yield
    finally:
        del task_logger.makeRecord


def simulate(
    specs: list[Spec],
    *,
    start: datetime.datetime,
    end: datetime.datetime,
    step: datetime.timedelta,
    planned: bool,
    workdir: Path,
) -> list[tuple[float, str]]:
    """(time, task) of every start between ``start`` and ``end``, the clock moving by ``step``."""
    return asyncio.run(_simulate(specs, start, end, step, planned, workdir))


async def _simulate(specs, start, end, step, planned, workdir) -> list[tuple[float, str]]:
    clock = Clock(start.timestamp())
    session = ControlSession(
        config={
            "time_func": clock,
            "execution": "main",
            "cycle_sleep": 0.001,
            "silence_cond_check": True,
            "silence_task_prerun": True,
            "silence_task_logging": True,
        }
    )
    scheduler = ControlScheduler(session) if planned else Scheduler(session)
    session.scheduler = scheduler
    basename = session.config.task_logger_basename
    task_logger = logging.getLogger(basename)
    task_logger.handlers = [h for h in task_logger.handlers if not hasattr(h, "repo")]
    stores = open_stores(
        f"sqlite:///{workdir / ('planned.db' if planned else 'plain.db')}", start_writer=False
    )
    store = stores.logs
    app = Rocketry(session=session, logger_repo=store)
    for spec in specs:

        def work(spec=spec):
            if _fails(spec, clock()):
                raise RuntimeError("simulated failure")

        app.session.create_task(
            func=work, name=spec.name, start_cond=spec.start_cond, priority=spec.priority, execution="main"
        )
    if planned:
        task_logger.addHandler(scheduler._listener)
    try:
        with _records_on(clock, basename):
            await scheduler.startup()
            while clock.now <= end.timestamp():
                await scheduler.run_cycle()
                clock.now += step.total_seconds()
        return [(e.created, e.task_name) for e in store.filter_by(action="run").all()]
    finally:
        task_logger.removeHandler(scheduler._listener) if planned else None
        task_logger.handlers = [h for h in task_logger.handlers if not hasattr(h, "repo")]
        stores.close()
