"""EventHub: what happens in the scheduler, fanned out to live subscribers (the event stream).

Task events are made from the same logging records the log store writes, so the stream and
``GET /logs`` cannot disagree; definition changes and run output are published too. Every
subscriber has a bounded queue: one that falls behind by more than its buffer is told so
and dropped (it reconnects, and can resume from the recent history by event id).
"""

from __future__ import annotations

from control.actions import ACTIONS
from control.eventloop import BoundLoop
from control.stores.base import LogEntry, LogStore

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    kind: str  # a task action, a definition change (create, edit, delete...), or "output"
    task: str | None
    created: float
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    tasks: frozenset[str] | None
    kinds: frozenset[str] | None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue())
    dropped: bool = False

    def wants(self, event: Event) -> bool:
        return (self.tasks is None or event.task in self.tasks) and (
            self.kinds is None or event.kind in self.kinds
        )


class EventHub:
    """Publish from any thread; subscribe and read on the event loop it is bound to (the
    server's, bound once at start: never whichever loop happens to run where an event is
    published, such as the private loop of a thread task)."""

    def __init__(self, *, buffer: int = 1000, history: int = 1000):
        self.buffer = buffer
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._loop = BoundLoop()  # before it is bound the service is not up: nobody listens
        self._shared: Any = None
        self.read_back: list[Any] = []  # told of every event read back from other replicas too
        self.dropped_subscribers = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop.bind(loop)

    def publish(self, kind: str, task: str | None, created: float, data: dict[str, Any]) -> None:
        if self._shared is not None:
            self._shared.publish(kind, task, created, data)  # delivered when read back
            return
        self._loop.call(self._deliver, kind, task, created, data)

    def share(self, shared: Any) -> None:
        """With replicas: publish through ``shared`` (``cluster.events.SharedEvents``), whose
        events, numbered by the database, come back through ``deliver_shared``."""
        self._shared = shared

    def deliver_shared(self, events: list[Any]) -> None:
        """Events every replica reads, in their order (any thread)."""
        self._loop.call(self._deliver_numbered, events)

    def _deliver_numbered(self, events: list[Any]) -> None:
        for shared in events:
            event = Event(shared.id, shared.kind, shared.task, shared.created, shared.data)
            self._fan_out(event)
            for hook in self.read_back:
                hook(event)

    def _deliver(self, kind: str, task: str | None, created: float, data: dict[str, Any]) -> None:
        self._fan_out(Event(next(self._ids), kind, task, created, data))

    def _fan_out(self, event: Event) -> None:
        self._history.append(event)
        for subscriber in list(self._subscribers):
            if not subscriber.wants(event):
                continue
            if subscriber.queue.qsize() >= self.buffer:
                # Never wait on a slow client: it is dropped, and told so.
                subscriber.dropped = True
                self.dropped_subscribers += 1
                self._subscribers.discard(subscriber)
                subscriber.queue.put_nowait(None)
                continue
            subscriber.queue.put_nowait(event)

    def subscribe(
        self,
        *,
        tasks: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        after: int | None = None,
    ) -> Subscription:
        if not self._loop.bound:
            self.bind(asyncio.get_running_loop())
        subscription = Subscription(
            tasks=frozenset(tasks) if tasks else None, kinds=frozenset(kinds) if kinds else None
        )
        if after is not None:
            for event in self._history:
                if event.id > after and subscription.wants(event):
                    subscription.queue.put_nowait(event)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every subscription (the service is stopping)."""
        for subscriber in list(self._subscribers):
            subscriber.queue.put_nowait(None)
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)


class LogEventBridge(logging.Handler):
    """Publishes every task log record as an event, built as the log store builds its entry."""

    def __init__(self, hub: EventHub, stamped: LogStore):
        super().__init__()
        self._hub = hub
        self._stamped = stamped  # the store whose epoch every record is written with
        self._formatter = logging.Formatter()  # what the store's RepoHandler formats with

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "action", None) not in ACTIONS:
            return
        fields = dict(vars(record))
        if isinstance(record.exc_info, tuple) and not record.exc_text:
            fields["exc_text"] = self._formatter.formatException(record.exc_info)
        try:
            entry = LogEntry.from_mapping(fields)
        except (KeyError, TypeError, ValueError):
            return
        self._hub.publish(
            entry.action,
            entry.task_name,
            entry.created,
            {
                "run_id": entry.run_id,
                "start": entry.start,
                "end": entry.end,
                "runtime": entry.runtime,
                "message": entry.message,
                "exc_text": entry.exc_text,
                "epoch": entry.epoch if entry.epoch is not None else self._stamped.epoch,
            },
        )


class RunOutputSink:
    """Where captured run output goes: the store, and the event stream."""

    def __init__(self, store, hub: EventHub):
        self._store = store
        self._hub = hub

    def __call__(self, line) -> None:
        self._store.add_output(line)
        self._hub.publish(
            "output",
            line.task_name,
            line.created,
            {
                "run_id": line.run_id,
                "seq": line.seq,
                "stream": line.stream,
                "text": line.text,
            },
        )
