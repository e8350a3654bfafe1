"""The ``/batch`` WebSocket of the batch example (see ``control/batching.py``).

Send JSON objects such as ``{"id": 1, "text": "hello"}``; each gets one answer, in the
order sent: ``{"id": 1, "result": {...}}``, or ``{"id": 1, "error": "..."}`` (the queue is
full, or the request is not an object with a ``text`` string, or not text at all).

A message over ``max_message_bytes`` closes the socket with 1009; a client whose replies
fill its outbox while it reads none is closed with 1008.
"""

from control.auth import Role
from control.batching import BatchQueue, Outbox
from control.deps import BatchDep, websocket_identity
from control.text import first_unencodable

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from starlette.types import Message

logger = logging.getLogger(__name__)

router = APIRouter()

# How long a close may wait for a client that reads nothing to make room for the close
# frame; then the connection is left to the server, which closes its socket.
_CLOSE_TIMEOUT = 10.0


class _Refusal(Exception):
    """The connection is to be closed with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/batch")
async def batch_socket(websocket: WebSocket, queue: BatchDep) -> None:
    identity = await websocket_identity(websocket, Role.operate)
    if identity is None:
        return
    await websocket.accept()
    owner = object()
    outbox = Outbox(limit=queue.max_pending_replies)
    receiver = asyncio.create_task(_receive_requests(websocket, queue, owner, outbox))
    sender = asyncio.create_task(outbox.deliver(websocket.send_text))
    try:
        await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        receiver.cancel()
        sender.cancel()
        queue.drop(owner)
    await asyncio.wait({receiver, sender})
    for ended in (receiver, sender):
        error = None if ended.cancelled() else ended.exception()
        if error is None:
            continue
        if isinstance(error, _Refusal):
            await _close(websocket, error.code, error.reason)
        elif not isinstance(error, WebSocketDisconnect):
            raise error


async def _receive_requests(websocket: WebSocket, queue: BatchQueue, owner: object, outbox: Outbox) -> None:
    """Read requests until the client leaves, queueing each and its reply's place; raise
    _Refusal to close the connection."""
    limit = queue.max_message_bytes
    held: Message | None = None  # received while the outbox was full, not yet looked at
    while True:
        message = held or await websocket.receive()
        held = None
        if message["type"] == "websocket.disconnect":
            return
        data: str | bytes | None = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
            size = len(data)
        else:
            size = len(data) if data.isascii() else len(data.encode())
        if size > limit:
            raise _Refusal(status.WS_1009_MESSAGE_TOO_BIG, f"a message may have at most {limit} bytes")
        _accept(data, queue, owner, outbox)
        # A message already received is handed over without yielding to the event loop:
        # without this, a client that floods would hold the loop for as long as it sends.
        await asyncio.sleep(0)
        # Full: read no further until a reply goes out, so the client's next requests wait
        # in its own socket. One more message is taken meanwhile, to see a client that left.
        while outbox.full:
            if outbox.stuck:
                raise _Refusal(
                    status.WS_1008_POLICY_VIOLATION,
                    f"fell behind: {len(outbox)} replies are waiting and it reads none",
                )
            if held is not None:
                await outbox.progress()
                continue
            held = await _first(websocket.receive(), outbox.progress())
            if held is not None and held["type"] == "websocket.disconnect":
                return


async def _first(receiving: Awaitable[Message], waiting: Awaitable[object]) -> Message | None:
    """The message, if it comes before ``waiting`` is over; else None (and nothing is lost:
    a receive that is cancelled leaves its message to the next one)."""
    received = asyncio.ensure_future(receiving)
    waited = asyncio.ensure_future(waiting)
    try:
        await asyncio.wait({received, waited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waited.cancel()
        received.cancel()
        await asyncio.wait({received, waited})
    return None if received.cancelled() else received.result()


def _accept(data: str | bytes, queue: BatchQueue, owner: object, outbox: Outbox) -> None:
    try:
        message = json.loads(data)
    except ValueError:  # not JSON, or bytes that are not UTF-8
        outbox.add(None, {"error": "not JSON"})
        return
    request_id = message.get("id") if isinstance(message, dict) else None
    if (b"\\u" if isinstance(data, bytes) else "\\u") in data and first_unencodable(message) is not None:
        outbox.add(request_id, {"error": "not Unicode text: a lone surrogate escape such as \\ud800"})
        return
    pending = queue.put(owner, message)
    if pending is None:
        outbox.add(request_id, {"error": f"the queue is full ({queue.limit} waiting)"})
    else:
        outbox.add(request_id, pending.reply)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code``; a client that reads nothing may never take the close frame,
    so this waits at most _CLOSE_TIMEOUT."""
    logger.info("Closing a /batch connection (%s): %s", code, reason)
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), _CLOSE_TIMEOUT)
