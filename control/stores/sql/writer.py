"""RecordWriter: records queued in memory and committed in batches by a thread of their own.

The event loop (and task threads) only queue a record; the writer thread gathers a burst of
them into one commit, so nothing waits on the database but the writer. Nothing a record
holds can stop it: a batch the database refuses for what it holds is written again one
record at a time, a refused record is written in a marked form (or set aside and counted),
an unforeseen error restarts the writing loop, and a writer thread that is gone is replaced.
While the database is away, records wait (up to ``max_pending``, then the oldest are dropped
and counted) and ``health`` says ``degraded``; so does a writer that makes no progress.
"""

from __future__ import annotations

from control.stores.base import StoreHealth
from control.stores.sql.engine import is_outage, short

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

logger = logging.getLogger(__name__)

_BATCH = 500
_GROUP_COMMIT = 0.005  # seconds a burst of records is given to arrive before it is committed


class RecordWriter:
    """Writes what ``add`` queues with ``write(batch)``, from a thread of its own.

    ``mark(record, error)`` returns the record in a form any database takes, noting that
    the original was refused; ``probe()`` raises if the table cannot be written at all
    (then a refused record is not the record's fault); ``maintain()`` runs on the writer
    thread every ``maintain_every`` seconds (retention). With ``start=False`` there is no
    thread: ``add`` writes at once (simulations).
    """

    def __init__(
        self,
        *,
        write: Callable[[list[Any]], None],
        mark: Callable[[Any, BaseException], Any],
        probe: Callable[[], None],
        maintain: Callable[[], None] | None = None,
        maintain_every: float = 300.0,
        max_pending: int = 100_000,
        stuck_after: float = 5.0,
        start: bool = True,
    ):
        self._write = write
        self._mark = mark
        self._probe = probe
        self._maintain = maintain
        self._maintain_every = maintain_every
        self._max_pending = max_pending
        self._stuck_after = stuck_after
        self._pending: deque[Any] = deque()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._restart_lock = threading.Lock()
        self._health = StoreHealth()
        self._accepted = 0
        self._settled = 0
        self._progress_at = time.monotonic()
        self._closing = False
        self._thread: threading.Thread | None = None
        if start:
            self._start_thread()

    # -- the callers' side (any thread) --------------------------------------------------

    def add(self, record: Any) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self._health.lost += 1
                self._settled += 1
            if not self._pending:
                self._progress_at = time.monotonic()  # waiting starts now
            self._pending.append(record)
            self._accepted += 1
        if self._thread is None:
            self._write_pending()
        else:
            self._keep_alive()
            self._wake.set()

    def pending(self) -> list[Any]:
        """The records not written yet, oldest first (readers merge them with the table)."""
        with self._lock:
            return list(self._pending)

    def flush(self, timeout: float) -> bool:
        """Wait until every record accepted so far is settled; False on timeout."""
        self._keep_alive()
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._accepted
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._wake.set()
                self._urgent.set()
                self._done.wait(remaining)
        return True

    def health(self) -> StoreHealth:
        self._keep_alive()
        with self._lock:
            health = replace(self._health, pending=len(self._pending))
            if health.pending:
                health.waiting_seconds = time.monotonic() - self._progress_at
        if health.status == "ok" and health.waiting_seconds > self._stuck_after:
            health.status = "degraded"
            health.last_error = (
                f"no record written for {health.waiting_seconds:.0f} s while {health.pending} wait"
            )
        return health

    def count_pruned(self, removed: int) -> None:
        with self._lock:
            self._health.pruned += removed

    def close(self, timeout: float = 5.0) -> None:
        """Write what waits (best effort) and stop the thread; says what was left unwritten."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._closing = True
            self._wake.set()
            thread.join(timeout=timeout)
        if self._pending and (thread is None or not thread.is_alive()):
            self._write_pending()
        with self._lock:
            left = len(self._pending)
        if left:
            logger.error("%d log records could not be written before closing", left)

    # -- the writer thread ---------------------------------------------------------------

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _keep_alive(self) -> None:
        """Start a new writer thread if the current one is gone (it should never be)."""
        thread = self._thread
        if thread is None or thread.is_alive() or self._closing:
            return
        with self._restart_lock:
            if self._thread is thread:
                logger.error("the log writer thread had stopped; starting a new one")
                with self._lock:
                    self._health.restarts += 1
                self._start_thread()

    def _run(self) -> None:
        """An unexpected error restarts the writing loop; it never ends it."""
        failures = 0
        while True:
            try:
                self._write_forever()
                return
            except Exception as exc:
                failures += 1
                logger.exception("the log writer failed; restarting it")
                with self._lock:
                    self._health.restarts += 1
                    self._health.last_error = f"the writer failed: {short(exc)}"
                time.sleep(min(0.05 * 2**failures, 5.0))
                self._wake.set()  # what waits is written at once by the new loop

    def _write_forever(self) -> None:
        # Without maintenance (no retention: a worker, or both limits off) nothing is due:
        # the thread sleeps until records come (a due time in the past would make it spin).
        first = min(self._maintain_every, 5.0) if self._maintain is not None else math.inf
        next_maintenance = time.monotonic() + first
        backoff = 0.0
        while True:
            timeout = min(max(0.0, next_maintenance - time.monotonic()), threading.TIMEOUT_MAX)
            if backoff:
                timeout = min(timeout, backoff)
            if self._wake.wait(timeout) and not self._closing:
                # Records come in bursts (a run's start, then its end): gather a burst into
                # one commit, made once the event loop is done producing it, unless a
                # reader is waiting for it (``flush``).
                self._urgent.wait(_GROUP_COMMIT)
            self._wake.clear()
            self._urgent.clear()
            ok = self._write_pending()
            backoff = 0.0 if ok else min(max(backoff * 2, 0.25), 5.0)
            if self._closing and (ok or not self._pending):
                return
            if self._maintain is not None and ok and time.monotonic() >= next_maintenance:
                try:
                    self._maintain()
                except Exception as exc:
                    logger.warning("pruning the log failed: %s", short(exc))
                next_maintenance = time.monotonic() + self._maintain_every

    def _write_pending(self) -> bool:
        """Commit what waits, batch by batch; False while the database is away.

        A batch the database refuses for what it holds (not for being away) is written
        record by record, so that only a bad record is set aside (see ``_write_each``)."""
        while True:
            with self._lock:
                batch = list(itertools.islice(self._pending, _BATCH))
            if not batch:
                return True
            try:
                self._write(batch)
            except Exception as exc:  # whatever the driver raises, the writer goes on
                if is_outage(exc):
                    self._degrade(exc)
                    return False
                if not self._write_each(batch):
                    return False
                continue
            self._settle(batch, written=len(batch))

    def _write_each(self, batch: list[Any]) -> bool:
        """Write records one at a time. One the database refuses is written again in marked
        form; if that is refused too and the table itself can be written (``probe``), it is
        set aside, counted in ``rejected`` and logged. False if the database went away."""
        for record in batch:
            try:
                self._write([record])
            except Exception as exc:
                if is_outage(exc):
                    self._degrade(exc)
                    return False
                try:
                    self._write([self._mark(record, exc)])
                except Exception as again:
                    if is_outage(again) or not self._writable():
                        self._degrade(again)
                        return False
                    logger.error("a log record was refused and set aside: %s: %r", short(exc), record)
                    with self._lock:
                        self._health.rejected += 1
                    self._settle([record], written=0)
                    continue
                logger.warning("a log record was stored in marked form: %s", short(exc))
            self._settle([record], written=1)
        return True

    def _writable(self) -> bool:
        try:
            self._probe()
        except Exception:
            return False
        return True

    def _settle(self, batch: list[Any], *, written: int) -> None:
        with self._lock:
            # Records dropped for space while we wrote are no longer at the front.
            for record in batch:
                if self._pending and self._pending[0] is record:
                    self._pending.popleft()
            self._settled += len(batch)
            self._health.written += written
            self._progress_at = time.monotonic()
            if self._health.status == "degraded":
                logger.warning("log store available again")
            self._health.status = "ok"
            self._health.last_error = None
            self._done.notify_all()

    def _degrade(self, exc: BaseException) -> None:
        with self._lock:
            if self._health.status == "ok":
                logger.error("log store unavailable, keeping records in memory: %s", short(exc))
            self._health.status = "degraded"
            self._health.last_error = short(exc)
