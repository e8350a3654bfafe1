"""The batch example: requests sent over a WebSocket, processed in batches by a scheduled task.

Clients send JSON requests on ``/batch``; they wait in a bounded queue; the task
``batch_requests`` takes up to K of them, processes them, and each result goes back to the
client that sent it, in the order it sent them. The task has no schedule of its own: the
queue asks for a run when requests wait, at once if the last batch is N seconds old, else
when it will be; so an idle queue leaves no trace in the log. A full queue answers with an
error at once; a client that disconnects has its waiting requests dropped.

Each connection keeps its replies in a bounded ``Outbox`` until they are sent: a client
that sends faster than the batches answer is read no further until replies go out, and one
that does not read its replies is told it fell behind and disconnected.
"""

from __future__ import annotations

from control.text import storable

import asyncio
import json
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rocketry.exc import TaskInactionException


@dataclass(eq=False)
class Pending:
    owner: object
    payload: Any
    reply: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchQueue:
    """Waiting requests, oldest first, and when the next batch may take them; used on the
    event loop only. The limits of the ``/batch`` connections are kept here too."""

    def __init__(self, *, limit: int, max_message_bytes: int = 65_536, max_pending_replies: int = 100):
        self.limit = limit
        self.max_message_bytes = max_message_bytes
        self.max_pending_replies = max_pending_replies
        self._items: deque[Pending] = deque()
        self._start: Callable[[], None] | None = None
        self._every = 0.0
        self._last_batch = -math.inf  # loop time of the last take
        self._due: asyncio.TimerHandle | None = None

    @classmethod
    def from_settings(cls, settings) -> BatchQueue:
        return cls(
            limit=settings.batch_queue_limit,
            max_message_bytes=settings.batch_max_message_bytes,
            max_pending_replies=settings.batch_max_pending_replies,
        )

    def __len__(self) -> int:
        return len(self._items)

    def pace(self, start: Callable[[], None], *, every: float) -> None:
        """Call ``start`` to ask for a batch whenever requests wait: at once if no batch
        was taken in the last ``every`` seconds, else when that time is up; and again every
        ``every`` seconds while they still wait (a run that was asked for but did not come,
        as when the task is disabled). ``start`` must be harmless when a run is already asked for."""
        self._start = start
        self._every = every

    def put(self, owner: object, payload: Any) -> Pending | None:
        """Queue a request; None when the queue is full."""
        if len(self._items) >= self.limit:
            return None
        pending = Pending(owner, payload)
        self._items.append(pending)
        if self._due is None:
            self._ask_at(self._last_batch + self._every)
        return pending

    def take(self, count: int) -> list[Pending]:
        """The next batch: up to ``count`` requests, oldest first."""
        loop = asyncio.get_running_loop()
        self._last_batch = loop.time()
        taken: list[Pending] = []
        while self._items and len(taken) < count:
            pending = self._items.popleft()
            if not pending.reply.done():  # a request of a client that left is skipped
                taken.append(pending)
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._items:
            self._ask_at(self._last_batch + self._every)
        return taken

    def drop(self, owner: object) -> int:
        """Forget a departed client's waiting requests."""
        mine = [p for p in self._items if p.owner is owner]
        for pending in mine:
            self._items.remove(pending)
            pending.reply.cancel()
        return len(mine)

    def _ask_at(self, when: float) -> None:
        if self._start is None:
            return
        loop = asyncio.get_running_loop()
        self._due = loop.call_at(max(when, loop.time()), self._ask)

    def _ask(self) -> None:
        self._due = None
        if not self._items:
            return  # their clients left: nothing to do, no run
        self._start()
        # Normally the run takes the batch (and cancels this) within a scheduler cycle.
        self._ask_at(asyncio.get_running_loop().time() + self._every)


class Outbox:
    """One connection's replies, in the order of its requests, until they are sent.

    It holds at most ``limit`` of them, answered or still waiting for a batch; the reader
    of the connection takes no more requests while it is ``full``. If it is full while the
    reply at its head cannot be sent (``stuck``), the client is not reading: it fell behind.
    """

    def __init__(self, *, limit: int):
        self.limit = limit
        self._replies: deque[tuple[Any, asyncio.Future | dict[str, Any]]] = deque()
        self._arrived = asyncio.Event()
        self._progress = asyncio.Event()
        # True while a reply is being sent. Sending to a socket that takes data returns
        # without yielding: uvicorn's ``send`` waits only on its ``writable`` event, which
        # ``pause_writing`` clears when the write buffer is over its high mark. So other
        # code that sees this true knows that the client is not reading.
        self._sending = False

    def __len__(self) -> int:
        return len(self._replies)

    @property
    def full(self) -> bool:
        return len(self._replies) >= self.limit

    @property
    def stuck(self) -> bool:
        return self._sending

    def add(self, request_id: Any, reply: asyncio.Future | dict[str, Any]) -> None:
        """A reply to send after those before it: a future (filled by the batch) or an
        immediate answer."""
        self._replies.append((request_id, reply))
        self._arrived.set()

    def progress(self) -> Awaitable[Literal[True]]:
        """What to await for the next reply sent, or the next one the sender starts sending
        (and may get stuck on). Made at once, so nothing that happens after the call is missed."""
        self._progress.clear()
        return self._progress.wait()

    async def deliver(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Send the replies in order as they are answered, until cancelled."""
        replies = self._replies
        while True:
            while not replies:
                self._arrived.clear()
                await self._arrived.wait()
            request_id, reply = replies[0]
            if isinstance(reply, asyncio.Future):
                reply = await reply
            text = encode_reply(request_id, reply)
            self._sending = True
            self._progress.set()
            await send(text)
            self._sending = False
            replies.popleft()
            self._progress.set()


def encode_reply(request_id: Any, reply: dict[str, Any]) -> str:
    """The reply as JSON text that can be sent: a request's id may hold a lone surrogate
    (JSON allows the escape ``"\\ud800"``, which no UTF-8 text can carry), which is then
    sent escaped instead of breaking the connection."""
    text = json.dumps({"id": request_id, **reply}, ensure_ascii=False)
    if storable(text) is not text:
        text = json.dumps({"id": request_id, **reply})  # all ASCII: the escape as the client sent it
    return text


def describe_text(payload: Any) -> dict[str, Any]:
    """The example's work: describe the text it was sent."""
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise ValueError('a request is a JSON object with a "text" string')
    return {"upper": text.upper(), "length": len(text), "words": len(text.split())}


def add_batch_task(session, queue: BatchQueue, *, size: int, every: float) -> None:
    """Create the ``batch_requests`` task that serves ``queue``, and have the queue ask for
    its runs."""

    async def batch_requests():
        """Answers up to K waiting /batch requests; run when its queue asks, at most every N seconds."""
        batch = queue.take(size)
        if not batch:
            raise TaskInactionException()  # run by hand, or its requests' clients left
        for pending in batch:
            try:
                pending.reply.set_result({"result": describe_text(pending.payload)})
            except ValueError as exc:
                pending.reply.set_result({"error": str(exc)})

    task = session.create_task(
        func=batch_requests, name="batch_requests", start_cond="false", execution="async"
    )
    scheduler = session.scheduler

    def start() -> None:
        # A disabled task gets no run; its requests wait until it is enabled again.
        if task.disabled or task.batches:
            return
        task.run()
        scheduler.touch(task)

    queue.pace(start, every=every)
