"""Live routes: the event stream (``/events``) and a run's output
(``/tasks/{name}/runs/{run_id}/output``), as Server-Sent Events encoded by FastAPI.

Each client has a bounded buffer: a client that falls that far behind gets an ``overflow``
event and is disconnected (it can reconnect with ``Last-Event-ID`` to resume from the
recent history). Idle streams get FastAPI's keep-alive comments.
"""

from control.actions import EventKind
from control.deps import READERS, HistoryDep
from control.paging import MAX_ID
from control.schemas.common import Message
from control.schemas.events import RunOutputPublic
from control.services.history import StreamItem

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, ServerSentEvent, format_sse_event
from pydantic import BaseModel

router = APIRouter(tags=["events"])

_SSE = {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
KEEP_ALIVE = 15.0  # seconds without a line before a followed output gets a keep-alive comment


def _sent(item: StreamItem) -> ServerSentEvent:
    return ServerSentEvent(data=item.data, event=item.kind, id=None if item.id is None else str(item.id))


async def subscribed(
    history: HistoryDep,
    task: Annotated[list[Annotated[str, Query(max_length=255)]], Query(description="Only these tasks")] = [],  # noqa: B006
    kind: Annotated[list[EventKind], Query(description="Only these kinds")] = [],  # noqa: B006
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
) -> Callable[[], AsyncIterator[StreamItem]]:
    """The stream asked for, subscribed before the answer starts (404 for an unknown task)."""
    return history.events(tasks=task, kinds=kind, after=last_event_id)


@router.get("/events", dependencies=READERS, response_class=EventSourceResponse, responses={200: _SSE})
async def stream_events(
    stream: Annotated[Callable[[], AsyncIterator[StreamItem]], Depends(subscribed)],
) -> AsyncIterator[ServerSentEvent]:
    """Live events: task run, success (with runtime), fail (with traceback), terminate, crash;
    create, edit, delete and other definition changes; run output lines (kind `output`)."""
    yield ServerSentEvent(comment="connected")
    async for item in stream():
        yield _sent(item)


@router.get(
    "/tasks/{name}/runs/{run_id}/output",
    dependencies=READERS,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": Message}},
)
async def get_run_output(
    name: Annotated[str, Path(max_length=255)],
    run_id: Annotated[str, Path(max_length=64)],
    history: HistoryDep,
    follow: Annotated[bool, Query(description="Stream it as Server-Sent Events until the run ends")] = False,
) -> RunOutputPublic:
    """What a run wrote (prints and logging), in order; `follow=true` streams it live."""
    if not follow:
        return await history.run_output(name, run_id)
    lines = await history.follow_output(name, run_id)

    async def frames() -> AsyncIterator[bytes]:
        async for item in _with_keep_alive(lines):
            if item is None:
                yield KEEPALIVE_COMMENT
                continue
            data = item.data.model_dump_json() if isinstance(item.data, BaseModel) else json.dumps(item.data)
            yield format_sse_event(data_str=data, event=item.kind)

    return EventSourceResponse(frames(), headers={"Cache-Control": "no-store"})


async def _with_keep_alive(items: AsyncIterator[StreamItem]) -> AsyncIterator[StreamItem | None]:
    """``items``, with None whenever none came for ``KEEP_ALIVE`` seconds. The items are
    pulled by a task of their own, so waiting never cancels (and so ends) the iterator."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    done = object()

    async def pull() -> None:
        try:
            async for item in items:
                await queue.put(item)
        finally:
            await queue.put(done)

    puller = asyncio.create_task(pull())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEP_ALIVE)
            except TimeoutError:
                yield None
                continue
            if item is done:
                return
            yield item
    finally:
        puller.cancel()
