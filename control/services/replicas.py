"""ReplicaService: this replica among others on one PostgreSQL database.

Every replica serves the whole API; one, the leader, launches tasks (``cluster.Coordinator``
decides which). What another replica changed reaches this one as a notice, and it applies
the stored result: a task's definition, the session parameters. A run or terminate asked
of a follower is passed to the leader through the database and answered with the
leader's answer. Events of every replica come back through ``cluster.events``; a follower
also takes from them the state of the tasks it does not run.
"""

from __future__ import annotations

from control.actions import ACTIONS
from control.cluster.coordinator import Coordinator
from control.cluster.events import SharedEvents
from control.engine.loop import ControlScheduler
from control.errors import InvalidInputError, LeaderUnavailableError, TaskNotFoundError, TaskStateError
from control.events import Event, EventHub
from control.services.common import store_call
from control.stores.base import CoordinationStore, DefinitionStore, Leadership, Notice, Request

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0  # seconds a follower waits for the leader's answer (failover included)
_PRUNE_EVERY = 600.0

Handler = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]


class ReplicaService:
    def __init__(
        self,
        session,
        scheduler: ControlScheduler,
        *,
        store: CoordinationStore,
        replica: str,
        events: EventHub,
        definitions: DefinitionStore,
        follow_task: Callable[[str], Awaitable[None]],
        follow_parameters: Callable[[], Awaitable[None]],
    ):
        self._definitions = definitions
        self._session = session
        self._scheduler = scheduler
        self._store = store
        self._events = events
        self._follow_task = follow_task
        self._follow_parameters = follow_parameters
        self.replica = replica
        self.coordinator = Coordinator(
            store, replica, elected=self._elected, deposed=self._deposed, heard=self._heard
        )
        scheduler.gate = self.coordinator
        self.shared = store.shared
        self.shared_events: SharedEvents | None = None
        if self.shared:
            self.shared_events = SharedEvents(store, deliver=events.deliver_shared)
            events.share(self.shared_events)
            events.read_back.append(self._follow_run)
        self.carry_out: Handler | None = None  # the leader's own run/terminate (set by the task service)
        self._waiting: dict[int, asyncio.Future] = {}
        self._background: set[asyncio.Task] = set()
        self._pruned_at = 0.0
        # One pass over the pending requests at a time (notices come in bursts), and the
        # requests already carried out, in case their answer could not be stored.
        self._answering = False
        self._again = False
        self._carried: dict[int, None] = {}

    # -- start and stop (event loop) -----------------------------------------------------

    def start(self) -> None:
        if self.shared_events is not None:
            self.shared_events.start()
        self.coordinator.start()

    def stop(self) -> None:
        """Give the launch right up at once (the scheduler no longer launches by now)."""
        self.coordinator.stop(resign=True)
        if self.shared_events is not None:
            self.shared_events.stop()

    # -- what /session shows -------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        leadership = self.coordinator.leadership
        if leadership is not None:
            leader, since, epoch = leadership.replica, leadership.since, leadership.epoch
        else:
            known = self.coordinator.leader_info
            leader, since, epoch = (known.replica, known.since, known.epoch) if known else (None, None, None)
            if known is not None and known.released:
                leader, since = None, None
        return {
            "role": self.coordinator.role,
            "replica": self.replica,
            "leader": leader,
            "leader_since": since,
            "epoch": epoch,
            "replicated": self.shared,
        }

    def coordination_error(self) -> str | None:
        return self.coordinator.last_error if self.shared else None

    # -- asking the leader (followers) ---------------------------------------------------

    def must_ask(self) -> bool:
        """Whether a run or terminate asked here goes to the leader."""
        return self.shared and self.coordinator.leadership is None

    async def ask(self, kind: str, task: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The leader's answer to ``kind`` on ``task`` (raising what it raised)."""
        loop = asyncio.get_running_loop()
        request_id = await store_call(self._store.submit, kind, task, payload)
        waiting = self._waiting[request_id] = loop.create_future()
        try:
            answer = await store_call(self._store.answer_of, request_id)  # answered already?
            if answer is None:
                answer = await asyncio.wait_for(waiting, ASK_TIMEOUT)
        except TimeoutError:
            raise LeaderUnavailableError(
                f"no leader replica answered within {ASK_TIMEOUT:g} s; the request was dropped"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        return _raised(answer)

    async def _collect(self, request_id: int) -> None:
        waiting = self._waiting.get(request_id)
        if waiting is None or waiting.done():
            return
        answer = await asyncio.to_thread(self._store.answer_of, request_id)
        if answer is not None and not waiting.done():
            waiting.set_result(answer)

    # -- answering (the leader) ----------------------------------------------------------

    async def _answer_pending(self) -> None:
        """Carry out every request not answered yet, each once: a pass asked for while one
        is going on makes that one read again instead of running beside it."""
        if self._answering:
            self._again = True
            return
        self._answering = True
        try:
            self._again = True
            while self._again:
                self._again = False
                await self._answer_once()
        finally:
            self._answering = False

    async def _answer_once(self) -> None:
        if not self._scheduler.leading() or self.carry_out is None:
            return
        answers: dict[int, dict[str, Any]] = {}
        for request in await asyncio.to_thread(self._store.pending_requests):
            if request.id in self._carried:
                continue
            self._carried[request.id] = None
            if len(self._carried) > 10_000:
                del self._carried[next(iter(self._carried))]
            answers[request.id] = await self._carry(request)
        if answers:
            try:
                await asyncio.to_thread(self._store.answer, answers)  # one commit for them all
            except Exception as exc:
                logger.warning("The answers to requests %s could not be stored: %s", sorted(answers), exc)
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            await asyncio.to_thread(self._store.prune, time.time())

    async def _carry(self, request: Request) -> dict[str, Any]:
        if time.time() - request.created > ASK_TIMEOUT:
            return {"error": "expired", "message": "asked too long ago: the asker gave up"}
        try:
            return {"ok": await self.carry_out(request.kind, request.task, request.payload)}
        except TaskNotFoundError as exc:
            return {"error": "not_found", "message": str(exc), "name": exc.name}
        except TaskStateError as exc:
            return {"error": "conflict", "message": str(exc)}
        except InvalidInputError as exc:
            return {"error": "invalid", "message": str(exc), "field": exc.field, "location": exc.location}
        except Exception as exc:
            logger.exception("Request %d (%s %s) failed", request.id, request.kind, request.task)
            return {"error": "failed", "message": f"{type(exc).__name__}: {exc}"}

    # -- what the coordinator says (event loop) ------------------------------------------

    def _elected(self, leadership: Leadership) -> None:
        self._scheduler.wake()
        if self.shared:
            self._spawn(self._answer_when_leading(leadership.epoch))

    async def _answer_when_leading(self, epoch: int) -> None:
        # Requests wait for the take-over (the previous leader may still be settling).
        while self.coordinator.leadership is not None and self.coordinator.leadership.epoch == epoch:
            if self._scheduler.leading():
                await self._answer_pending()
                return
            await asyncio.sleep(0.05)

    def _deposed(self) -> None:
        self._scheduler.wake()

    def _heard(self, notice: Notice) -> None:
        if notice.kind == "definitions":
            self._spawn(self._follow_task(notice.subject) if notice.subject else self._follow_parameters())
        elif notice.kind == "events" and self.shared_events is not None:
            self.shared_events.heard()
        elif notice.kind == "requests":
            self._spawn(self._answer_pending())
        elif notice.kind == "answers" and notice.subject.isdigit():
            self._spawn(self._collect(int(notice.subject)))
        elif notice.kind == "resync":
            self._spawn(self._resync())

    async def _resync(self) -> None:
        """Notices may have been missed (the connection was lost): catch up on everything."""
        if self.shared_events is not None:
            self.shared_events.heard()
        for name in [task.name for task in self._session.tasks]:
            await self._follow_task(name)
        stored, _ = await asyncio.to_thread(self._definitions.load)
        for definition in stored:
            await self._follow_task(definition.name)
        await self._follow_parameters()
        await self._answer_pending()
        for request_id in list(self._waiting):
            await self._collect(request_id)

    def _follow_run(self, event: Event) -> None:
        """A follower keeps the state of the tasks the leader runs from their records."""
        if self._scheduler.epoch is not None or event.kind not in ACTIONS or event.task is None:
            return
        task = self._session.tasks.find(event.task)
        if task is None:
            return
        setattr(task, f"_last_{event.kind}", event.created)
        task.status = event.kind

    def _spawn(self, work: Awaitable[Any]) -> None:
        job = asyncio.ensure_future(work)
        self._background.add(job)
        job.add_done_callback(self._done)

    def _done(self, job: asyncio.Task) -> None:
        self._background.discard(job)
        if not job.cancelled() and job.exception() is not None:
            logger.error("Replica work failed: %s", job.exception())


def _raised(answer: dict[str, Any]) -> dict[str, Any]:
    error = answer.get("error")
    if error is None:
        return answer["ok"]
    message = answer.get("message", "")
    if error == "not_found":
        raise TaskNotFoundError(answer.get("name", "?"))
    if error == "conflict":
        raise TaskStateError(message)
    if error == "invalid":
        raise InvalidInputError(
            message, field=answer.get("field", "body"), location=answer.get("location", "body")
        )
    raise LeaderUnavailableError(message)
