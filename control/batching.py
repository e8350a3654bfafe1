"""The batch example: requests sent over a WebSocket, processed in batches by a scheduled task.

Clients send JSON requests on ``/batch``; they wait in a bounded queue; the task
``batch_requests`` (``every N seconds``) takes up to K of them, processes them, and each
result goes back to the client that sent it, in the order it sent them. A full queue
answers with an error at once; a client that disconnects has its waiting requests dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rocketry.exc import TaskInactionException


@dataclass(eq=False)
class Pending:
    owner: object
    payload: Any
    reply: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchQueue:
    """Waiting requests, oldest first; used on the event loop only."""

    def __init__(self, *, limit: int):
        self.limit = limit
        self._items: deque[Pending] = deque()
        self.processed = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, owner: object, payload: Any) -> Pending | None:
        """Queue a request; None when the queue is full."""
        if len(self._items) >= self.limit:
            return None
        pending = Pending(owner, payload)
        self._items.append(pending)
        return pending

    def take(self, count: int) -> list[Pending]:
        taken: list[Pending] = []
        while self._items and len(taken) < count:
            pending = self._items.popleft()
            if not pending.reply.done():  # a request of a client that left is skipped
                taken.append(pending)
        return taken

    def drop(self, owner: object) -> int:
        """Forget a departed client's waiting requests."""
        mine = [p for p in self._items if p.owner is owner]
        for pending in mine:
            self._items.remove(pending)
            pending.reply.cancel()
        return len(mine)


def process(payload: Any) -> dict[str, Any]:
    """The example's work: describe the text it was sent."""
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise ValueError('a request is a JSON object with a "text" string')
    return {"upper": text.upper(), "length": len(text), "words": len(text.split())}


def add_batch_task(session, queue: BatchQueue, *, size: int, every: float) -> None:
    """Create the ``batch_requests`` task that serves ``queue``."""

    async def batch_requests():
        """Takes up to K queued WebSocket requests and answers each (the batch example)."""
        batch = queue.take(size)
        if not batch:
            raise TaskInactionException()  # nothing waited: logged as "inaction"
        for pending in batch:
            try:
                pending.reply.set_result({"result": process(pending.payload)})
            except ValueError as exc:
                pending.reply.set_result({"error": str(exc)})
        queue.processed += len(batch)

    session.create_task(
        func=batch_requests, name="batch_requests", start_cond=f"every {every:g} seconds", execution="async"
    )
