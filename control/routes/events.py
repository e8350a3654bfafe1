"""Live routes: the event stream (``/events``) and a run's output (``/tasks/{name}/runs/{run_id}/output``).

Both are Server-Sent Events. Each client has a bounded buffer: a client that falls that far
behind gets an ``overflow`` event and is disconnected (it can reconnect with
``Last-Event-ID`` to resume from the recent history).
"""

from control.deps import READERS, RuntimeDep, TasksDep
from control.errors import NotFoundError
from control.events import TASK_ACTIONS, Event
from control.paging import MAX_ID
from control.routes.filters import utc
from control.schemas import ChangeEventPublic, EventKind, Message, OutputEventPublic, RunEventPublic

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

router = APIRouter(tags=["events"])

KEEP_ALIVE = 15.0  # seconds between comments that keep idle connections open
_FINAL = ("success", "fail", "terminate", "inaction", "crash")
_SSE = {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}


def _frame(kind: str, data: BaseModel | dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data)
    return f"{head}event: {kind}\ndata: {body}\n\n"


def _payload(event: Event) -> BaseModel:
    """The event in the shape the rest of the API gives the same record."""
    data, common = event.data, {"event_id": event.id, "kind": event.kind, "created": utc(event.created)}
    if event.kind in TASK_ACTIONS:
        return RunEventPublic(
            **common,
            task_name=event.task,
            action=event.kind,
            run_id=data.get("run_id"),
            start=utc(data.get("start")),
            end=utc(data.get("end")),
            runtime=data.get("runtime"),
            message=data.get("message"),
            exc_text=data.get("exc_text"),
        )
    if event.kind == "output":
        return OutputEventPublic(**common, task_name=event.task, **data)
    return ChangeEventPublic(**common, task_name=event.task, **data)


async def _relay(subscription, runtime, *, render=None, until=None) -> AsyncIterator[str]:
    """Frames for the subscription's events (``render`` may skip one by returning None),
    keep-alive comments while idle, until ``until`` says so or the hub ends it."""
    try:
        while True:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), KEEP_ALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is None:
                if subscription.dropped:
                    yield _frame("overflow", {"detail": "this client fell too far behind; reconnect"})
                return
            frame = render(event) if render is not None else _frame(event.kind, _payload(event), event.id)
            if frame is not None:
                yield frame
            if until is not None and until(event):
                return
    finally:
        runtime.unsubscribe(subscription)


@router.get("/events", dependencies=READERS, response_class=StreamingResponse, responses={200: _SSE})
async def stream_events(
    runtime: RuntimeDep,
    tasks: TasksDep,
    task: Annotated[list[Annotated[str, Field(max_length=255)]], Query(description="Only these tasks")] = [],  # noqa: B006
    kind: Annotated[list[EventKind], Query(description="Only these kinds")] = [],  # noqa: B006
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
):
    """Live events: task run, success (with runtime), fail (with traceback), terminate, crash;
    create, edit, delete and other definition changes; run output lines (kind `output`)."""
    for name in task:
        tasks.task(name)  # an unknown task is a 404, not a stream that stays silent
    subscription = runtime.subscribe(tasks=task or None, kinds=kind or None, after=last_event_id)

    async def body() -> AsyncIterator[str]:
        yield ": connected\n\n"
        async for chunk in _relay(subscription, runtime):
            yield chunk

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


class OutputLinePublic(BaseModel):
    seq: int
    created: datetime
    stream: str = Field(description="stdout, stderr, or log (the task's logging records)")
    text: str


class RunOutputPublic(BaseModel):
    task_name: str
    run_id: str
    finished: bool
    lines: list[OutputLinePublic]


def _line(line) -> OutputLinePublic:
    return OutputLinePublic(seq=line.seq, created=utc(line.created), stream=line.stream, text=line.text)


@router.get(
    "/tasks/{name}/runs/{run_id}/output",
    dependencies=READERS,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": Message}},
)
async def get_run_output(
    name: Annotated[str, Path(max_length=255)],
    run_id: Annotated[str, Path(max_length=64)],
    runtime: RuntimeDep,
    tasks: TasksDep,
    follow: Annotated[bool, Query(description="Stream it as Server-Sent Events until the run ends")] = False,
) -> RunOutputPublic:
    """What a run wrote (prints and logging), in order; `follow=true` streams it live."""
    if not follow:
        output = await run_in_threadpool(runtime.run_output, name, run_id)
        if not output.known:
            raise NotFoundError(f"Task '{name}' has no run '{run_id}'")
        return RunOutputPublic(
            task_name=name,
            run_id=run_id,
            finished=output.finished,
            lines=[_line(line) for line in output.lines],
        )
    # Subscribe first, then read what is stored: a line is then seen once or twice (told
    # apart by its seq), never missed.
    subscription = runtime.subscribe(tasks=[name], kinds=["output", *_FINAL])
    output = await run_in_threadpool(runtime.run_output, name, run_id)
    if not output.known:
        runtime.unsubscribe(subscription)
        raise NotFoundError(f"Task '{name}' has no run '{run_id}'")

    async def body() -> AsyncIterator[str]:
        seen = {"seq": -1}
        for line in output.lines:
            seen["seq"] = line.seq
            yield _frame("line", _line(line))
        if output.finished:
            runtime.unsubscribe(subscription)
            yield _frame("end", {"run_id": run_id})
            return

        def render(event: Event) -> str | None:
            data = event.data
            if event.kind != "output" or data.get("run_id") != run_id or data["seq"] <= seen["seq"]:
                return None
            seen["seq"] = data["seq"]
            line = OutputLinePublic(
                seq=data["seq"], created=utc(event.created), stream=data["stream"], text=data["text"]
            )
            return _frame("line", line)

        def is_end(event: Event) -> bool:
            return event.kind in _FINAL and event.data.get("run_id") == run_id

        async for chunk in _relay(subscription, runtime, render=render, until=is_end):
            yield chunk
        # Lines a process sends just before it ends may come after its outcome.
        late = await run_in_threadpool(runtime.run_output, name, run_id, after=seen["seq"])
        for line in late.lines:
            yield _frame("line", _line(line))
        yield _frame("end", {"run_id": run_id})

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
