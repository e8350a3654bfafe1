"""CeleryDispatcher: sends runs to the broker and revokes them, from a thread of its own.

Each run is first recorded in the ``RemoteRunStore`` (so that whichever replica leads knows
it went to a worker), then published. While the broker (or the database) refuses, the run
waits in order and is tried again every ``RETRY_EVERY`` seconds; ``last_error`` says why
meanwhile, and ``/health`` is degraded. A run given up by the scheduler (terminated, or not
taken within its timeout) is not sent any more. While some task runs on Celery, the broker
is also checked when idle, so an outage shows before the next run.
"""

from __future__ import annotations

from control.stores.base import RemoteRunStore
from control.workers.app import GRACE, RUN

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery

logger = logging.getLogger(__name__)

RETRY_EVERY = 1.0
CHECK_EVERY = 2.0  # seconds between two checks of an idle broker


class CeleryDispatcher:
    def __init__(self, app: Celery, store: RemoteRunStore, *, watched: Callable[[], bool]):
        self.app = app
        self.store = store
        self._watched = watched  # whether any task runs on Celery (then the broker matters)
        self._jobs: collections.deque[tuple[str, Any]] = collections.deque()
        self._ready = threading.Condition()
        self._revoked: set[str] = set()
        self._stopping = False
        self.last_error: str | None = None
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="celery-dispatch", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._jobs)

    # -- from the event loop -----------------------------------------------------------

    def send(
        self, run_id: str, task_name: str, payload: dict[str, Any], timeout: float, *, again: bool = False
    ) -> None:
        """Send the run (``again``: it is recorded already; a worker takes it once)."""
        self._put(("send", (run_id, task_name, payload, timeout, [again])))

    def revoke(self, run_id: str) -> None:
        self._put(("revoke", run_id))

    def stop(self, timeout: float = 5.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout)

    def _put(self, job: tuple[str, Any]) -> None:
        with self._ready:
            self._jobs.append(job)
            self._ready.notify()

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        checked_at = 0.0
        while True:
            with self._ready:
                if not self._jobs and not self._stopping:
                    self._ready.wait(CHECK_EVERY)
                if self._stopping and not self._jobs:
                    return
                job = self._jobs[0] if self._jobs else None
            if job is None:
                if time.monotonic() - checked_at >= CHECK_EVERY and self._watched():
                    checked_at = time.monotonic()
                    self._check_broker()
                continue
            try:
                self._do(*job)
            except Exception as exc:
                self._failed(exc)
                with self._ready:
                    if not self._stopping:
                        self._ready.wait(RETRY_EVERY)
                    elif self._jobs:
                        self._jobs.popleft()  # stopping: what is left is followed by the next leader
                continue
            with self._ready:
                self._jobs.popleft()
            self.last_error = None

    def _do(self, kind: str, arguments: Any) -> None:
        if kind == "revoke":
            self._revoked.add(arguments)
            self.app.control.revoke(arguments, terminate=True, signal="SIGTERM")
            return
        run_id, task_name, payload, timeout, recorded = arguments
        if run_id in self._revoked:
            return
        if not recorded[0]:
            self.store.sent(run_id, task_name, payload, time.time())
            recorded[0] = True
        self.app.send_task(
            RUN,
            kwargs=payload,
            task_id=run_id,
            soft_time_limit=timeout,
            time_limit=timeout + GRACE,
            retry=False,
        )
        self.sent += 1

    def _check_broker(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:
            self._failed(exc)
        else:
            self.last_error = None

    def _failed(self, exc: Exception) -> None:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self.last_error is None:
            logger.error("Celery broker or database unavailable: %s", text)
        self.last_error = f"{type(exc).__name__}: {text}"
