"""The contracts of the service's stores, and the records they keep.

Each role is an abstract class: ``LogStore`` (what Rocketry logs about runs, read by the
scheduler and the API), ``OutputStore`` (what runs wrote), ``AuditStore`` (who changed
what), ``DefinitionStore`` (tasks and parameters made through the API, and their versions),
``CoordinationStore`` (leadership, claimed starts and messages between replicas).
``control.stores.sql`` implements them all on SQLAlchemy (SQLite, PostgreSQL, MariaDB/MySQL);
``tests/stores`` runs one contract suite over every backend. Nothing outside the store
modules knows how they keep anything.
"""

from __future__ import annotations

from control.paging import Cursor
from control.text import storable

import datetime
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from redbird.templates import TemplateRepo


class StoreOpenError(RuntimeError):
    """The database cannot be opened (or its tables made); the message says why, briefly."""


def _to_epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float(value)


def _to_seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One status change of one run of a task, as Rocketry logs it; times are epoch seconds."""

    task_name: str
    action: str
    created: float
    run_id: str | None = None
    start: float | None = None
    end: float | None = None
    runtime: float | None = None
    message: str | None = None
    exc_text: str | None = None
    epoch: int | None = None  # the leadership epoch of the replica that logged it
    id: int | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LogEntry:
        """Build from a ``logging.LogRecord``'s ``vars()`` (what redbird's RepoHandler writes)."""
        message = data.get("message")
        if message is None:
            message = data.get("msg")
        run_id, exc_text = data.get("run_id"), data.get("exc_text")
        return cls(
            task_name=storable(str(data["task_name"])),
            action=str(data["action"]),
            created=float(data["created"]),
            run_id=None if run_id is None else storable(str(run_id)),
            start=_to_epoch(data.get("start")),
            end=_to_epoch(data.get("end")),
            runtime=_to_seconds(data.get("runtime")),
            message=None if message is None else storable(str(message)),
            exc_text=None if exc_text is None else storable(str(exc_text)),
            epoch=data.get("epoch"),
            id=data.get("id"),
        )

    @property
    def key(self) -> tuple:
        """What tells two records apart before the store has given them an id."""
        return (self.task_name, self.action, self.created, self.run_id)


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One line a run wrote: ``stream`` is stdout, stderr or log; ``seq`` counts from 0 per run."""

    task_name: str
    run_id: str
    seq: int
    created: float
    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A page request: every filter is optional; pages run newest first."""

    tasks: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    limit: int = 100
    cursor: Cursor | None = None


@dataclass(slots=True)
class LogPage:
    entries: list[LogEntry]
    next_cursor: Cursor | None


@dataclass(slots=True)
class StoreHealth:
    """Whether records reach the database: ``pending`` wait in memory, ``lost`` were dropped
    for space, ``rejected`` were refused by the database even alone and in marked form;
    ``waiting_seconds`` is how long records have waited without any being written; the
    writer thread was restarted ``restarts`` times."""

    status: Literal["ok", "degraded"] = "ok"
    pending: int = 0
    lost: int = 0
    last_error: str | None = None
    written: int = 0
    pruned: int = 0
    rejected: int = 0
    waiting_seconds: float = 0.0
    restarts: int = 0


class LogStore(TemplateRepo):
    """Contract of a log store.

    Rocketry writes through redbird's ``RepoHandler`` (``add``) and reads through
    ``filter_by(...)`` (``last``/``all``/``count``), expecting records in the order they
    were created. The API pages through ``page`` and watches ``health``. Implementations
    must not lose a record they accepted without counting it in ``health().lost``.
    """

    class Config:
        arbitrary_types_allowed = True

    def to_item(self, obj: Any) -> LogEntry:
        if isinstance(obj, LogEntry):
            return obj
        if isinstance(obj, Mapping):
            return LogEntry.from_mapping(obj)
        raise TypeError(f"cannot store a {type(obj).__name__} as a log record")

    def data_to_item(self, data: Any) -> LogEntry:
        return self.to_item(data if isinstance(data, Mapping | LogEntry) else dict(data._mapping))

    def item_to_data(self, item: LogEntry) -> LogEntry:
        return item

    @abstractmethod
    def page(self, query: LogQuery) -> LogPage:
        """Records matching ``query``, newest first, and where the next page starts."""

    @abstractmethod
    def latest_actions(self) -> dict[str, dict[str, float]]:
        """For every task, the time of its newest record of each action (one query, so a
        scheduler with thousands of tasks restores their state quickly)."""

    @abstractmethod
    def unfinished_runs(self) -> list[LogEntry]:
        """The ``run`` records (with a run id) that no other record of the same run follows:
        runs cut short when the service died. Oldest first; only those since the time last
        given to ``mark_runs_checked`` (so a restart does not read the whole history)."""

    @abstractmethod
    def mark_runs_checked(self, until: float) -> None:
        """Every run that started before ``until`` now has an outcome in the log."""

    @abstractmethod
    def stamp(self, epoch: int) -> None:
        """Write ``epoch`` on every record accepted from now on. A run's records are kept
        once each: a second start or a second outcome of one run id is dropped, so a
        deposed leader's late records cannot make a run look started or ended twice."""

    @property
    @abstractmethod
    def epoch(self) -> int | None:
        """The epoch last given to ``stamp`` (None before)."""

    @abstractmethod
    def flush(self, timeout: float) -> bool:
        """Wait until every record accepted so far is durable; False on timeout."""

    @abstractmethod
    def prune(self, *, now: float) -> int:
        """Apply the retention policy once; returns how many records were removed."""

    @abstractmethod
    def health(self) -> StoreHealth: ...

    @abstractmethod
    def close(self) -> None:
        """Write what is pending (best effort) and release the database."""


class OutputStore(ABC):
    """Contract of a run output store: the lines each run wrote, in order."""

    @abstractmethod
    def add_output(self, line: OutputLine) -> None:
        """Keep a line of a run's output (queued like the records; any thread)."""

    @abstractmethod
    def output(self, task_name: str, run_id: str, *, after: int = -1, limit: int = 1000) -> list[OutputLine]:
        """A run's output lines with ``seq`` over ``after``, in order."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One request that changed (or tried to change) something."""

    created: float
    actor: str
    client: str | None
    method: str
    route: str
    task: str | None
    status: int
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actors: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    limit: int = 100
    cursor: Cursor | None = None


class AuditStore(ABC):
    """Contract of the audit trail. Every method blocks: call them off the event loop."""

    @abstractmethod
    def record(self, entry: AuditEntry) -> None:
        """Keep ``entry``; never raises (a failure is logged and counted in ``failed``)."""

    @property
    @abstractmethod
    def failed(self) -> int:
        """Entries that could not be kept."""

    @abstractmethod
    def page(self, query: AuditQuery) -> tuple[list[AuditEntry], Cursor | None]:
        """Entries matching ``query``, newest first, and where the next page starts."""

    @abstractmethod
    def prune(self, *, now: float, days: float) -> int:
        """Remove the entries older than ``days``; returns how many went."""


@dataclass(frozen=True)
class StoredDefinition:
    """What is kept of a task made or changed through the API: a runtime task whole
    (``origin`` runtime), or the edited fields of a code task (``origin`` code)."""

    name: str
    origin: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Version:
    """One change to a task's definition: who, from where, what, why, and the stored
    definition after it (None after a delete)."""

    task_name: str
    actor: str
    client: str | None
    action: str
    changes: dict[str, Any]
    reason: str | None
    origin: str
    definition: dict[str, Any] | None
    created: float = 0.0
    id: int | None = None


@dataclass(frozen=True)
class VersionQuery:
    since: float | None = None
    until: float | None = None
    limit: int = 100
    cursor: Cursor | None = None


class DefinitionStore(ABC):
    """Contract of the definitions store. Every method blocks: call them off the event loop."""

    @abstractmethod
    def load(self) -> tuple[list[StoredDefinition], dict[str, Any]]:
        """Every stored definition (by name), and the session parameters."""

    @abstractmethod
    def load_one(self, name: str) -> StoredDefinition | None:
        """``name``'s stored definition (None: it has none)."""

    @abstractmethod
    def save(self, definition: StoredDefinition | None, version: Version, *, name: str) -> Version:
        """Replace (or with None, remove) ``name``'s definition and add ``version``, in one
        transaction; returns the version as stored (with its id and time)."""

    @abstractmethod
    def versions(self, name: str, query: VersionQuery) -> tuple[list[Version], Cursor | None]:
        """``name``'s versions matching ``query``, newest first, and where the next page starts."""

    @abstractmethod
    def version(self, name: str, version_id: int) -> Version | None: ...

    @abstractmethod
    def set_parameter(self, name: str, value: Any) -> None: ...

    @abstractmethod
    def delete_parameter(self, name: str) -> bool:
        """Remove a session parameter; False if there was none."""


@dataclass(frozen=True)
class Leadership:
    """The launch right, as a replica won it."""

    epoch: int  # one more than every epoch before it; written on every record it logs
    replica: str
    since: float
    clean: bool  # the previous leader resigned: nothing of it can still be launching


@dataclass(frozen=True)
class LeaderInfo:
    """Who leads, as the database says (``replica`` None: nobody yet)."""

    epoch: int
    replica: str | None
    since: float | None
    released: bool


@dataclass(frozen=True)
class Claim:
    """A start, claimed before the task started: the ``seq``-th start of ``task_name``."""

    task_name: str
    seq: int
    run_id: str
    epoch: int
    created: float


@dataclass(frozen=True)
class Notice:
    """What another replica said: a change of ``kind`` (see ``NOTICE_KINDS``) about ``subject``."""

    kind: str
    subject: str


# released: the leader resigned; definitions: a task's definition (subject: its name) or
# the session parameters ("") changed; events: events were appended; requests: a run or
# terminate was asked of the leader; answers: a request (subject: its id) was answered;
# resync: notices may have been missed (after reconnecting): read everything again.
NOTICE_KINDS = ("released", "definitions", "events", "requests", "answers", "resync")


@dataclass(frozen=True)
class SharedEvent:
    """An event as every replica reads it, numbered by the database."""

    id: int
    kind: str
    task: str | None
    created: float
    data: dict[str, Any]


@dataclass(frozen=True)
class Request:
    """A request of a follower for the leader: ``kind`` ("run", "terminate") on ``task``."""

    id: int
    kind: str
    task: str
    payload: dict[str, Any]
    created: float


class CoordinationStore(ABC):
    """What replicas sharing one database agree through it: which one launches tasks
    (leadership with an epoch), which starts were claimed, and the notices, events and
    requests they pass to each other.

    Leadership and ``listen`` belong to one thread (the coordinator's), which owns the
    connection they need; everything else may be called from any thread. A store whose
    database cannot be shared (SQLite) leads alone, claims nothing and hears nothing.
    """

    shared: bool  # several replicas may use the database at once

    @abstractmethod
    def lead(self, replica: str) -> Leadership | None:
        """Take the launch right if nobody holds it; None if another replica does."""

    @abstractmethod
    def confirm(self, epoch: int) -> bool:
        """Whether the launch right of ``epoch`` is still held (False, never raising, when
        it cannot be confirmed, the database being away included)."""

    @abstractmethod
    def resign(self, epoch: int) -> None:
        """Give the launch right up, saying so (the next leader need not wait)."""

    @abstractmethod
    def leader(self) -> LeaderInfo: ...

    @abstractmethod
    def listen(self, timeout: float) -> list[Notice]:
        """The notices sent since the last call, waiting up to ``timeout`` for one."""

    @abstractmethod
    def notify(self, kind: str, subject: str = "") -> None: ...

    @abstractmethod
    def claim(self, task_name: str, seq: int, run_id: str, epoch: int) -> bool:
        """Record that ``task_name``'s ``seq``-th start is ``run_id``, if ``epoch`` still
        leads and that start was not claimed already; whether it was recorded."""

    @abstractmethod
    def last_claims(self) -> dict[str, int]:
        """Each task's highest claimed ``seq``."""

    @abstractmethod
    def unrecorded_claims(self, before_epoch: int) -> list[Claim]:
        """Claims of earlier leaders whose run the log does not show started."""

    @abstractmethod
    def append_events(self, events: list[tuple[str, str | None, float, dict[str, Any]]]) -> None:
        """Append events (kind, task, created, data), numbered in the order they commit."""

    @abstractmethod
    def events_after(self, event_id: int, limit: int) -> list[SharedEvent]: ...

    @abstractmethod
    def last_event_id(self) -> int: ...

    @abstractmethod
    def submit(self, kind: str, task: str, payload: dict[str, Any]) -> int:
        """Ask the leader; the request's id."""

    @abstractmethod
    def pending_requests(self) -> list[Request]: ...

    @abstractmethod
    def answer(self, answers: dict[int, dict[str, Any]]) -> None:
        """Answer requests (by id), in one go; a request answered already keeps its answer."""

    @abstractmethod
    def answer_of(self, request_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def prune(self, now: float) -> None:
        """Forget old events, requests and claims (the leader calls it now and then)."""

    @abstractmethod
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RemoteRun:
    """A run sent to a worker, as the database last heard of it. ``started`` and ``beat``
    are set by the worker that took it (``beat`` every few seconds while it runs);
    ``outcome`` (success, fail or terminate) once it ended, with ``ended``."""

    run_id: str
    task_name: str
    sent: float
    payload: dict[str, Any]
    worker: str | None = None
    started: float | None = None
    beat: float | None = None
    outcome: str | None = None
    ended: float | None = None
    message: str | None = None
    exc_text: str | None = None


class RemoteRunStore(ABC):
    """Runs on workers (Celery): sent by the leader, taken, kept alive and ended by a
    worker, settled (logged, then forgotten) by whichever replica leads."""

    @abstractmethod
    def sent(self, run_id: str, task_name: str, payload: dict[str, Any], when: float) -> None:
        """The run is about to be sent; recorded first, so that a new leader knows it went to
        a worker (and can send it again if no worker took it: taking it happens once)."""

    @abstractmethod
    def take(self, run_id: str, worker: str, when: float) -> bool:
        """A worker starts the run: False if it was taken already or forgotten (revoked,
        timed out), and then the worker must not run it."""

    @abstractmethod
    def beat(self, run_ids: list[str], when: float) -> None:
        """The worker still runs these."""

    @abstractmethod
    def end(
        self, run_id: str, outcome: str, when: float, *, message: str | None, exc_text: str | None
    ) -> None:
        """The worker's outcome of the run (kept until a leader settles it)."""

    @abstractmethod
    def states(self, run_ids: list[str]) -> list[RemoteRun]:
        """What is known of these runs (those forgotten are missing)."""

    @abstractmethod
    def forget(self, run_id: str, *, unless_taken: bool = False) -> bool:
        """Settled: forget the run (with ``unless_taken``, only if no worker took it).
        False when nothing was forgotten."""


@dataclass(frozen=True)
class Stores:
    """Every store of the service, opened on one database."""

    logs: LogStore
    output: OutputStore
    audit: AuditStore
    definitions: DefinitionStore
    coordination: CoordinationStore
    remote: RemoteRunStore
    database: str  # where, for people: the URL with its password hidden
    closer: Callable[[], None]

    def close(self) -> None:
        """Write what is pending (best effort) and release the database."""
        self.closer()


@dataclass(frozen=True)
class WorkerStores:
    """What a worker writes: its runs' output, and their states."""

    output: OutputStore
    remote: RemoteRunStore
    closer: Callable[[], None]

    def close(self) -> None:
        self.closer()
