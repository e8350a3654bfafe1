"""What a worker does with a run: the Celery task that runs one task's function.

The worker resolves the function by the same rule the service applies when a task is
defined (``control.targets``: a function defined in a module of an allowed package), so a
message on the broker cannot make it run anything else. It takes the run in the database
first (a run is never run twice, however often it is delivered), captures what the run
writes as its output, beats while it runs, and stores the outcome: ``success``, ``fail``
with the traceback, or ``terminate`` when the task's timeout (Celery's soft time limit)
stopped it. The leader logs that outcome as for a local run.
"""

from __future__ import annotations

from control.engine import session as _rocketry_as_the_service_has_it  # noqa: F401  (execution "celery")
from control.engine.output import OutputCapture
from control.engine.remote import BEAT_EVERY
from control.settings import Settings
from control.stores.base import WorkerStores
from control.stores.sql import open_worker_stores
from control.targets import resolve_function
from control.workers.app import RUN

import asyncio
import inspect
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

logger = logging.getLogger(__name__)


class WorkerProcess:
    """This worker process's stores, output capture and heartbeat (one per forked child)."""

    def __init__(self, settings: Settings):
        self.stores: WorkerStores = open_worker_stores(settings.database_url)
        self.capture = OutputCapture(max_bytes=settings.max_output_bytes, sink=self.stores.output.add_output)
        self.capture.install_streams()
        self.allowed = list(dict.fromkeys([*settings.task_packages, *settings.task_func_packages]))
        self.running: set[str] = set()
        threading.Thread(target=self._beat, name="run-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        while True:
            time.sleep(BEAT_EVERY)
            if self.running:
                try:
                    self.stores.remote.beat(list(self.running), time.time())
                except Exception as exc:
                    logger.warning("Cannot say the runs are alive: %s", exc)

    def run(self, run_id: str, worker: str, task: str, target: str, parameters: dict[str, Any]) -> str:
        """Run it; the outcome stored (``skipped`` if it was taken or given up already)."""
        remote = self.stores.remote
        if not remote.take(run_id, worker, time.time()):
            logger.warning("Run %s of %r was taken or given up already; not running it", run_id, task)
            return "skipped"
        self.running.add(run_id)
        message = exc_text = None
        try:
            func = resolve_function(target, allowed_packages=self.allowed)
            with self.capture.capturing(task, run_id):
                if inspect.iscoroutinefunction(func):
                    asyncio.run(func(**parameters))
                else:
                    func(**parameters)
            outcome = "success"
        except SoftTimeLimitExceeded:
            outcome, message = "terminate", f"Task '{task}' status: 'terminate' (timeout)"
        except Exception:
            outcome, exc_text = "fail", traceback.format_exc().rstrip("\n")
        finally:
            self.running.discard(run_id)
        self.stores.output.flush(5.0)
        remote.end(run_id, outcome, time.time(), message=message, exc_text=exc_text)
        return outcome


def register(app: Celery, settings: Callable[[], Settings]) -> None:
    """Add the run task to ``app``; each worker process opens its stores at its first run."""
    processes: dict[int, WorkerProcess] = {}

    @app.task(name=RUN, bind=True)
    def run(self, task: str, target: str, parameters: dict[str, Any]) -> str:
        process = processes.get(os.getpid())
        if process is None:
            process = processes[os.getpid()] = WorkerProcess(settings())
        return process.run(self.request.id, self.request.hostname or "worker", task, target, parameters)
