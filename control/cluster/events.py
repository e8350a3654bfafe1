"""SharedEvents: one event stream for every replica, through the shared database.

Events published here (run records, output lines, definition changes) are appended to the
database in batches, numbered in the order they commit; every replica reads what was
appended after the last event it read, when told that there is something new (and every
``POLL`` seconds in case a notice was lost), and delivers it to its own subscribers with
the database's number as the event id. So ``/events`` on any replica shows the events of
all of them, in one order, and ``Last-Event-ID`` means the same everywhere.
"""

from __future__ import annotations

from control.stores.base import CoordinationStore, SharedEvent

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

POLL = 1.0
_BATCH = 500
_MAX_PENDING = 100_000


class SharedEvents:
    def __init__(self, store: CoordinationStore, *, deliver: Callable[[list[SharedEvent]], None]):
        self._store = store
        self._deliver = deliver  # called on this thread; it hands the events to the loop
        self._outbox: deque[tuple[str, str | None, float, dict[str, Any]]] = deque()  # thread-safe ends
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.last_id = 0
        self.dropped = 0  # events not appended: more than _MAX_PENDING waited for the database

    def start(self) -> None:
        self.last_id = self._store.last_event_id()
        self._thread = threading.Thread(target=self._run, name="shared-events", daemon=True)
        self._thread.start()

    def publish(self, kind: str, task: str | None, created: float, data: dict[str, Any]) -> None:
        """Append an event (any thread); it is delivered here when read back."""
        if len(self._outbox) >= _MAX_PENDING:
            self.dropped += 1
            return
        self._outbox.append((kind, task, created, _json_safe(data)))
        self._wake.set()

    def heard(self) -> None:
        """Another replica appended events."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._wake.wait(POLL)
            self._wake.clear()
            try:
                self._append()
                self._read()
            except Exception as exc:
                logger.warning("Shared events: %s; trying again", exc)
                if not self._stopping:
                    threading.Event().wait(0.2)
                    self._wake.set()
            if self._stopping and not self._outbox:
                return

    def _append(self) -> None:
        batch = []
        while len(batch) < _BATCH and self._outbox:
            batch.append(self._outbox.popleft())
        if not batch:
            return
        try:
            self._store.append_events(batch)
        except Exception:
            self._outbox.extendleft(reversed(batch))  # first again, in their order
            raise
        if self._outbox:
            self._wake.set()

    def _read(self) -> None:
        while True:
            events = self._store.events_after(self.last_id, _BATCH)
            if not events:
                return
            self.last_id = events[-1].id
            self._deliver(events)
            if len(events) < _BATCH:
                return


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (None if isinstance(value, float) and not math.isfinite(value) else value)
        for key, value in data.items()
    }
