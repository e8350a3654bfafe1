"""Planner: which tasks the scheduler has to check, and when.

Each task has a due time: the earliest moment its start condition may have changed
(``horizon.next_change``). A record logged by a task, or a task that stops running, makes
that task and every task whose condition refers to it due at once. The scheduler checks
only due tasks, so a pass costs what is due, not how many tasks there are.
"""

from __future__ import annotations

from control.engine.horizon import INF, next_change, referenced_tasks

import heapq
import itertools
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Literal

from rocketry.core import Task

logger = logging.getLogger(__name__)

Verdict = Literal["ran", "not_due", "running", "no_capacity", "on_hold"]


def order_key(task: Task) -> tuple[int, str]:
    """Rocketry checks higher priorities first; names break ties so the order is fixed."""
    return (-getattr(task, "priority", 0), task.name)


class Planner:
    """Due times of a session's tasks. ``note`` may be called from any thread; the rest
    runs on the event loop."""

    def __init__(self, session, *, poll_interval: float):
        self._session = session
        self.poll_interval = poll_interval
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._refs: dict[str, tuple[object, set[str]]] = {}
        self._dependents: dict[str, set[str]] = defaultdict(set)
        self._noted: set[str] = set()
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._known: set[str] = set()
        self._ran_at: dict[str, float] = {}
        self._tasks_version: int | None = None
        self.polled: set[str] = set()

    # -- events ------------------------------------------------------------------------

    def note(self, name: str) -> None:
        """``name`` logged a record or stopped running (thread-safe)."""
        with self._lock:
            self._noted.add(name)

    def touch(self, name: str, when: float = -INF) -> None:
        """Check ``name`` at ``when`` (default: at once), e.g. after an edit or a run request."""
        self._set(name, when)

    # -- the plan ----------------------------------------------------------------------

    def sync(self) -> None:
        """Follow tasks added to or removed from the session."""
        tasks = self._session.tasks
        version = getattr(tasks, "version", None)
        if version is not None and version == self._tasks_version:
            return
        self._tasks_version = version
        names = {task.name for task in tasks}
        for name in names - self._known:
            self._set(name, -INF)
        for name in self._known - names:
            self._forget(name)
        self._known = names

    def take_due(self, now: float) -> list[Task]:
        """Tasks to check now: those whose time has come and those touched by events."""
        with self._lock:
            noted, self._noted = self._noted, set()
        for name in noted:
            self._set_at_least(name, now)
            for dependent in self._dependents.get(name, ()):
                self._set_at_least(dependent, now)
        names = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, name = heapq.heappop(heap)
            if self._due.get(name) == when:
                del self._due[name]
                names.append(name)
        found = (self._session.tasks.find(name) for name in names)
        return [task for task in found if task is not None]

    def plan(self, task: Task, *, now: float, verdict: Verdict) -> float:
        """Set when ``task`` is next checked, after it was checked at ``now``."""
        name = task.name
        self._follow_references(task)
        self.polled.discard(name)
        if verdict == "ran":
            self._ran_at[name] = now
        if verdict in ("no_capacity", "on_hold"):
            when = self._poll(name, now)
        elif verdict == "running":
            when = INF  # its end is an event
        elif task.on_startup or task.on_shutdown:
            when = INF
        elif task.batches:
            when = now  # more runs were requested
        elif task.disabled:
            when = INF
        else:
            try:
                when = next_change(task.start_cond, task=task, session=self._session, now=now)
            except Exception:
                logger.debug("Cannot tell when %r may change; polling it", name, exc_info=True)
                when = now
            if when <= now:
                when = self._poll(name, now)
        self._set(name, when)
        return when

    def next_due(self) -> float:
        heap = self._heap
        while heap and self._due.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else INF

    def due_at(self, name: str) -> float | None:
        return self._due.get(name)

    # -- internals ---------------------------------------------------------------------

    def _poll(self, name: str, now: float) -> float:
        self.polled.add(name)
        return now + self.poll_interval

    def _set_at_least(self, name: str, when: float) -> None:
        # A task that just started is not checked again before a cycle has passed, even
        # if its own records say it ended: Rocketry's cycle_sleep spaces the runs of a
        # task whose condition stays true, and so does this.
        ran_at = self._ran_at.get(name)
        if ran_at is not None:
            when = max(when, ran_at + self.poll_interval)
        current = self._due.get(name)
        if current is None or current > when:
            self._set(name, when)

    def _set(self, name: str, when: float) -> None:
        """The latest decision wins: a check or an event after an earlier plan replaces it."""
        if when == INF:
            self._due.pop(name, None)
            return
        self._due[name] = when
        heapq.heappush(self._heap, (when, next(self._seq), name))
        if len(self._heap) > 2 * len(self._due) + 1024:
            # Superseded entries are dropped lazily; rebuild before they pile up.
            self._heap = [(due, next(self._seq), key) for key, due in self._due.items()]
            heapq.heapify(self._heap)

    def _follow_references(self, task: Task) -> None:
        condition = task.start_cond
        known = self._refs.get(task.name)
        if known is not None and known[0] is condition:
            return
        refs = referenced_tasks(condition, own=task.name) if condition is not None else {task.name}
        if known is not None:
            for ref in known[1] - refs:
                self._dependents[ref].discard(task.name)
        for ref in refs:
            self._dependents[ref].add(task.name)
        self._refs[task.name] = (condition, refs)

    def _forget(self, name: str) -> None:
        self._due.pop(name, None)
        self._ran_at.pop(name, None)
        self.polled.discard(name)
        known = self._refs.pop(name, None)
        if known is not None:
            for ref in known[1]:
                self._dependents[ref].discard(name)


class CycleTimes:
    """How long the scheduler's passes took: the last one, and the mean of recent ones."""

    def __init__(self, *, window: float = 10.0):
        self.window = window
        self.last: float | None = None
        self._recent: deque[tuple[float, float]] = deque(maxlen=1000)

    def add(self, seconds: float) -> None:
        self.last = seconds
        self._recent.append((time.monotonic(), seconds))

    def mean(self) -> float | None:
        """Mean duration of the passes of the last ``window`` seconds."""
        since = time.monotonic() - self.window
        recent = [seconds for at, seconds in self._recent if at >= since]
        return sum(recent) / len(recent) if recent else self.last


class RecordListener(logging.Handler):
    """Passes the task name of every task record to ``noted``, whichever thread or
    process logged it: a record may make tasks due (see ``Planner.note``)."""

    def __init__(self, noted: Callable[[str], None]):
        super().__init__()
        self._noted = noted

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "task_name", None)
        if name is not None:
            self._noted(name)
