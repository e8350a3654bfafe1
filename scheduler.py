"""The Rocketry application: session configuration, the log store it writes to, and its tasks."""

from control.batching import BatchQueue, add_batch_task
from control.discovery import discover_groups
from control.engine import processes
from control.engine.claims import Claims
from control.engine.loop import ControlScheduler
from control.engine.output import OutputCapture
from control.engine.session import ControlSession
from control.events import EventHub, LogEventBridge, RunOutputSink
from control.settings import Settings
from control.stores.base import Stores

import functools
import logging

from rocketry import Rocketry


def create_scheduler(
    settings: Settings, stores: Stores, *, events: EventHub, batch: BatchQueue | None = None
) -> Rocketry:
    """A Rocketry app whose tasks come from ``settings.task_packages``, log to ``stores`` and
    to the ``events`` stream, and whose runs' output is kept per run."""
    processes.install()
    session = ControlSession(
        config={
            "execution": "async",
            "task_pre_exist": "raise",
            "cycle_sleep": settings.cycle_sleep,
            "timeout": settings.default_timeout,
            "max_process_count": settings.max_process_tasks,
            # A task or a condition that breaks is logged; it never stops the scheduler.
            "silence_task_prerun": True,
            "silence_task_logging": True,
            "silence_cond_check": True,
            # A stop terminates running tasks instead of waiting for them to finish.
            "instant_shutdown": True,
        }
    )
    session.scheduler = ControlScheduler(session, shutdown_timeout=settings.shutdown_timeout)
    if stores.coordination.shared:
        # Replicas: every start is claimed in the database first, with the run id it gets.
        session.scheduler.claims = Claims(stores.coordination)
        session.config.func_run_id = session.scheduler.claims.run_id
    # Runs on Celery workers: the broker is reached only once some task runs there.
    session.scheduler.remote.store = stores.remote
    session.scheduler.remote.connect_with = functools.partial(celery_dispatcher, settings, stores.remote)
    _detach_previous_handlers(session.config.task_logger_basename)
    app = Rocketry(session=session, logger_repo=stores.logs)
    logging.getLogger(session.config.task_logger_basename).addHandler(LogEventBridge(events, stores.logs))
    output = OutputCapture(max_bytes=settings.max_output_bytes, sink=RunOutputSink(stores.output, events))
    output.install(session)
    session.scheduler.processes.output = output
    for group in discover_groups(settings.task_packages):
        app.include_grouper(group)
    if batch is not None:
        add_batch_task(session, batch, size=settings.batch_size, every=settings.batch_every)
    return app


def celery_dispatcher(settings: Settings, store, watched):
    from control.workers.app import make_app  # Celery is imported only when used
    from control.workers.dispatch import CeleryDispatcher

    return CeleryDispatcher(make_app(settings.celery_broker, settings.celery_queue), store, watched=watched)


def _detach_previous_handlers(logger_name: str) -> None:
    # Rocketry's task logger is process-wide; the store and the event stream of a previous
    # app built in this process (tests build many) must not keep receiving records.
    task_logger = logging.getLogger(logger_name)
    task_logger.handlers = [
        h for h in task_logger.handlers if not hasattr(h, "repo") and not isinstance(h, LogEventBridge)
    ]
