"""The ``/batch`` WebSocket of the batch example (see ``control/batching.py``).

Send JSON objects such as ``{"id": 1, "text": "hello"}``; each gets one answer, in the
order sent: ``{"id": 1, "result": {...}}``, or ``{"id": 1, "error": "..."}`` (the queue is
full, or the request is not an object with a ``text`` string).
"""

from control.auth import Role
from control.batching import BatchQueue
from control.deps import websocket_identity

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

router = APIRouter()


def _answered(reply: dict) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(reply)
    return future


@router.websocket("/batch")
async def batch_socket(websocket: WebSocket) -> None:
    identity = await websocket_identity(websocket, Role.operate)
    if identity is None:
        return
    await websocket.accept()
    queue: BatchQueue = websocket.app.state.batch
    owner = object()
    replies: asyncio.Queue = asyncio.Queue()

    async def answer_in_order() -> None:
        while True:
            request_id, reply = await replies.get()
            await websocket.send_json({"id": request_id, **(await reply)})

    sender = asyncio.create_task(answer_in_order())
    try:
        while True:
            text = await websocket.receive_text()
            try:
                message = json.loads(text)
            except json.JSONDecodeError:
                replies.put_nowait((None, _answered({"error": "not JSON"})))
                continue
            request_id = message.get("id") if isinstance(message, dict) else None
            pending = queue.put(owner, message)
            if pending is None:
                replies.put_nowait(
                    (request_id, _answered({"error": f"the queue is full ({queue.limit} waiting)"}))
                )
            else:
                replies.put_nowait((request_id, pending.reply))
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        queue.drop(owner)
