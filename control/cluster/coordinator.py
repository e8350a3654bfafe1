"""Coordinator: this replica's part among replicas sharing one database.

A thread of its own takes the launch right when nobody holds it, confirms it every
``CONFIRM_EVERY`` seconds while it leads, and hears what the other replicas say. The
scheduler may launch only within ``LEASE`` seconds of the last confirmation that
succeeded (counted from when it was sent), so a leader that can no longer reach the
database stops launching within ``LEASE`` seconds, whatever it is doing. A replica that
takes the right from a leader that did not resign waits ``LEASE`` (and a margin) before
it launches, so the two never launch at the same time; after a resignation it starts at
once.

On a database that cannot be shared (SQLite), the replica leads from the start, alone,
and no thread runs.
"""

from __future__ import annotations

from control.eventloop import BoundLoop
from control.stores.base import CoordinationStore, LeaderInfo, Leadership, Notice

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

logger = logging.getLogger(__name__)

LEASE = 1.0  # seconds a confirmation lets the leader launch
CONFIRM_EVERY = 0.25
TRY_EVERY = 0.5  # how often a follower tries to take the launch right
_MARGIN = 0.2  # beyond LEASE, before launching after a leader that did not resign

Role = Literal["leader", "follower"]


class Coordinator:
    """``elected(leadership)`` and ``deposed()`` are called on the event loop this
    coordinator is started on; so is ``heard(notice)`` for every notice of the others."""

    def __init__(
        self,
        store: CoordinationStore,
        replica: str,
        *,
        elected: Callable[[Leadership], None],
        deposed: Callable[[], None],
        heard: Callable[[Notice], None],
    ):
        self.store = store
        self.replica = replica
        self.shared = store.shared
        self.leadership: Leadership | None = None
        self._elected, self._deposed, self._heard = elected, deposed, heard
        self._confirmed_at = 0.0  # monotonic send time of the last confirmation that held
        self._launch_from = 0.0
        self._try_at = 0.0
        self._confirm_at = 0.0
        self._loop = BoundLoop()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed_confirmations = 0
        self.leader_info: LeaderInfo | None = None  # who leads, as last read (followers)
        self._info_at = 0.0
        self.last_error: str | None = None  # why the database was not reached, until it is again

    @property
    def role(self) -> Role:
        return "leader" if self.leadership is not None else "follower"

    def may_launch(self) -> bool:
        """Whether this replica may start a task now."""
        if self.leadership is None:
            return False
        if not self.shared:
            return True
        now = time.monotonic()
        return now < self._confirmed_at + LEASE and now >= self._launch_from

    def launch_delay(self) -> float:
        """Seconds until a new leader may launch (0 when it may now, or does not lead)."""
        if self.leadership is None:
            return 0.0
        return max(0.0, self._launch_from - time.monotonic())

    # -- start and stop (event loop) -----------------------------------------------------

    def start(self) -> None:
        self._loop.bind()
        if not self.shared:
            self._become_leader(self.store.lead(self.replica), sent=time.monotonic())
            return
        self._thread = threading.Thread(target=self._run, name="coordinator", daemon=True)
        self._thread.start()

    def stop(self, *, resign: bool = True) -> None:
        """Stop taking part; give the launch right up at once if this replica leads."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        leadership, self.leadership = self.leadership, None
        if leadership is not None and resign:
            self.store.resign(leadership.epoch)

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step()
                due = self._confirm_at if self.leadership is not None else self._try_at
                wait = min(max(0.0, due - time.monotonic()), CONFIRM_EVERY)
                for notice in self.store.listen(timeout=wait):
                    self._hear(notice)
            except Exception as exc:
                self.last_error = _first_line(exc)
                logger.exception("Coordination failed; trying again")
                self._stopping.wait(TRY_EVERY)

    def _step(self) -> None:
        if self._stopping.is_set():
            return
        leadership = self.leadership
        if leadership is not None:
            sent = time.monotonic()
            if sent < self._confirm_at:
                return
            self._confirm_at = sent + CONFIRM_EVERY
            try:
                confirmed = self.store.confirm(leadership.epoch)
            except Exception as exc:
                self.last_error, confirmed = _first_line(exc), False
            if confirmed:
                self._confirmed_at, self.last_error = sent, None
            else:
                self.failed_confirmations += 1
                logger.error(
                    "Leadership (epoch %d) not confirmed: no longer launching tasks", leadership.epoch
                )
                self.leadership = None
                self._try_at = time.monotonic() + TRY_EVERY
                self._loop.call(self._deposed)
            return
        if time.monotonic() >= self._info_at:
            self._info_at = time.monotonic() + TRY_EVERY
            try:
                self.leader_info, self.last_error = self.store.leader(), None
            except Exception as exc:
                self.last_error = _first_line(exc)
                logger.debug("Cannot read who leads: %s", exc)
        if time.monotonic() < self._try_at:
            return
        self._try_at = time.monotonic() + TRY_EVERY
        sent = time.monotonic()
        try:
            won = self.store.lead(self.replica)
        except Exception as exc:
            self.last_error = _first_line(exc)
            logger.warning("Cannot try for the leadership: %s", exc)
            return
        if won is not None:
            self._become_leader(won, sent=sent)

    def _become_leader(self, leadership: Leadership | None, *, sent: float) -> None:
        if leadership is None:
            return
        self._confirmed_at = sent
        self._confirm_at = sent + CONFIRM_EVERY
        self._launch_from = time.monotonic() + (0.0 if leadership.clean else LEASE + _MARGIN)
        self.leadership = leadership
        logger.info(
            "Leading (epoch %d)%s",
            leadership.epoch,
            "" if leadership.clean else f"; launching in {LEASE + _MARGIN} s",
        )
        self._loop.call(self._elected, leadership)

    def _hear(self, notice: Notice) -> None:
        if notice.kind == "released" and self.leadership is None:
            self._try_at = 0.0  # the leader resigned: try at once
        self._loop.call(self._heard, notice)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
