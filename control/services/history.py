"""HistoryService: what happened to tasks: the log, each run's output, and the live event stream.

Reads of the stores block, so they run off the event loop. A live stream is a subscription
to the ``EventHub``, with a bounded buffer: a client that falls that far behind is told so
and dropped (it reconnects, and resumes from the recent history by event id).
"""

from __future__ import annotations

from control.actions import ACTIONS, OUTCOMES
from control.errors import NotFoundError, TaskNotFoundError
from control.events import Event, EventHub, Subscription
from control.schemas.events import (
    ChangeEventPublic,
    OutputEventPublic,
    OutputLinePublic,
    RunEventPublic,
    RunOutputPublic,
)
from control.schemas.logs import LogFilter, LogList, LogRecordPublic
from control.services.catalog import TaskCatalog
from control.stores.base import LogQuery, LogStore, OutputLine, OutputStore
from control.times import utc

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class StreamItem:
    """One thing to send on a live stream: an event (``kind``, ``data``, ``id``), or the
    news that the client fell behind (``overflow``)."""

    kind: str
    data: BaseModel | dict
    id: int | None = None


@dataclass(frozen=True)
class _Output:
    known: bool
    finished: bool
    lines: list[OutputLine]


class HistoryService:
    def __init__(self, *, logs: LogStore, output: OutputStore, events: EventHub, catalog: TaskCatalog):
        self._logs = logs
        self._output = output
        self._events = events
        self._catalog = catalog

    # -- the log -------------------------------------------------------------------------

    async def logs(self, filters: LogFilter, *, task: str | None = None) -> LogList:
        """A page of the log, newest first (one task's, when ``task`` is given: 404 if it
        does not exist)."""
        if task is not None and not self._catalog.exists(task):
            raise TaskNotFoundError(task)
        since, until = filters.window()
        query = LogQuery(
            tasks=(task,) if task is not None else tuple(filters.task),
            actions=tuple(filters.action),
            run_ids=tuple(filters.run_id),
            since=since,
            until=until,
            limit=filters.limit,
            cursor=filters.decoded_cursor(),
        )
        page = await asyncio.to_thread(self._page, query)
        return LogList(
            data=[
                LogRecordPublic(
                    id=entry.id,
                    task_name=entry.task_name,
                    action=entry.action,
                    created=utc(entry.created),
                    run_id=entry.run_id,
                    start=utc(entry.start),
                    end=utc(entry.end),
                    runtime=entry.runtime,
                    message=entry.message,
                    exc_text=entry.exc_text,
                    epoch=entry.epoch,
                )
                for entry in page.entries
            ],
            next_cursor=page.next_cursor.encode() if page.next_cursor else None,
        )

    def _page(self, query: LogQuery):
        if self._logs.health().status == "ok":
            # What was logged before the request is part of the answer.
            self._logs.flush(timeout=1.0)
        return self._logs.page(query)

    # -- a run's output ------------------------------------------------------------------

    async def run_output(self, task: str, run_id: str) -> RunOutputPublic:
        """What a run wrote, in order, and whether it has ended; 404 for a run unknown."""
        output = await asyncio.to_thread(self._read_output, task, run_id, -1)
        if not output.known:
            raise NotFoundError(f"Task '{task}' has no run '{run_id}'")
        return RunOutputPublic(
            task_name=task,
            run_id=run_id,
            finished=output.finished,
            lines=[_line(line) for line in output.lines],
        )

    async def follow_output(self, task: str, run_id: str) -> AsyncIterator[StreamItem]:
        """What a run wrote and goes on writing, as stream items (``line``, then ``end``).
        Subscribed before the stored lines are read: a line is then seen once or twice (told
        apart by its seq), never missed. 404 (before anything is sent) for a run unknown."""
        subscription = self._events.subscribe(tasks=[task], kinds=["output", *OUTCOMES])
        output = await asyncio.to_thread(self._read_output, task, run_id, -1)
        if not output.known:
            self._events.unsubscribe(subscription)
            raise NotFoundError(f"Task '{task}' has no run '{run_id}'")
        return self._follow(subscription, output, task, run_id)

    async def _follow(
        self, subscription, output: _Output, task: str, run_id: str
    ) -> AsyncIterator[StreamItem]:
        seen = -1
        try:
            for line in output.lines:
                seen = line.seq
                yield StreamItem("line", _line(line))
            if output.finished:
                yield StreamItem("end", {"run_id": run_id})
                return
            async for event in _events_of(subscription):
                if isinstance(event, StreamItem):
                    yield event
                    return
                data = event.data
                if event.kind == "output" and data.get("run_id") == run_id and data["seq"] > seen:
                    seen = data["seq"]
                    created = utc(event.created)
                    yield StreamItem(
                        "line",
                        OutputLinePublic(seq=seen, created=created, stream=data["stream"], text=data["text"]),
                    )
                elif event.kind in OUTCOMES and data.get("run_id") == run_id:
                    break
        finally:
            self._events.unsubscribe(subscription)
        # Lines a process sends just before it ends may come after its outcome.
        late = await asyncio.to_thread(self._read_output, task, run_id, seen)
        for line in late.lines:
            yield StreamItem("line", _line(line))
        yield StreamItem("end", {"run_id": run_id})

    def _read_output(self, task: str, run_id: str, after: int) -> _Output:
        logs = self._logs
        if logs.health().status == "ok":
            logs.flush(timeout=1.0)
        records = logs.filter_by(task_name=task, run_id=run_id).all()
        lines = self._output.output(task, run_id, after=after, limit=100_000)
        return _Output(
            known=bool(records) or bool(lines),
            finished=any(r.action in OUTCOMES for r in records),
            lines=lines,
        )

    # -- the live stream -----------------------------------------------------------------

    def events(
        self, *, tasks: list[str], kinds: list[str], after: int | None
    ) -> Callable[[], AsyncIterator[StreamItem]]:
        """The stream of events about ``tasks`` (each must exist: 404), of ``kinds``, from
        the recent history after the event ``after``; subscribed at once, so nothing that
        happens after the call is missed. Returns the stream to iterate."""
        for name in tasks:
            if not self._catalog.exists(name):
                raise TaskNotFoundError(name)
        subscription = self._events.subscribe(tasks=tasks or None, kinds=kinds or None, after=after)

        async def stream() -> AsyncIterator[StreamItem]:
            try:
                async for event in _events_of(subscription):
                    if isinstance(event, StreamItem):
                        yield event
                        return
                    yield StreamItem(event.kind, _payload(event), event.id)
            finally:
                self._events.unsubscribe(subscription)

        return stream

    @property
    def subscribers(self) -> int:
        return self._events.subscribers


async def _events_of(subscription: Subscription) -> AsyncIterator[Event | StreamItem]:
    """The subscription's events until the hub ends it; an ``overflow`` item last if the
    client fell too far behind."""
    while True:
        event = await subscription.queue.get()
        if event is None:
            if subscription.dropped:
                yield StreamItem("overflow", {"detail": "this client fell too far behind; reconnect"})
            return
        yield event


def _payload(event: Event) -> BaseModel:
    """The event in the shape the rest of the API gives the same record."""
    data, common = event.data, {"event_id": event.id, "kind": event.kind, "created": utc(event.created)}
    if event.kind in ACTIONS:
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
            epoch=data.get("epoch"),
        )
    if event.kind == "output":
        return OutputEventPublic(**common, task_name=event.task, **data)
    return ChangeEventPublic(**common, task_name=event.task, **data)


def _line(line: OutputLine) -> OutputLinePublic:
    return OutputLinePublic(seq=line.seq, created=utc(line.created), stream=line.stream, text=line.text)
