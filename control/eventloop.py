"""BoundLoop: the event loop an object belongs to, reachable from any thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class BoundLoop:
    """Calls land on the bound loop whichever thread makes them (a task's thread, the
    log writer, a private loop of a thread task); before binding, and once the loop is
    closed, they are dropped: nobody is there to act on them."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to ``loop`` (by default the running one); call from its thread."""
        self.loop = loop or asyncio.get_running_loop()
        self._thread = threading.get_ident()

    @property
    def bound(self) -> bool:
        return self.loop is not None

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def call(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop: now if called from its thread."""
        if self.loop is None:
            return
        if self.on_loop_thread():
            callback(*args)
            return
        self._soon(callback, *args)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        if self.loop is None:
            return
        if self.on_loop_thread():
            self.loop.call_later(delay, callback, *args)
        else:
            self._soon(self.loop.call_later, delay, callback, *args)

    def _soon(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed
            pass
