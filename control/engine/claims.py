"""Claims: every start claimed in the shared database before it happens.

With replicas, a new leader learns what its predecessor started from the log, which a
leader that dies may not have written yet. So each start is first claimed, synchronously,
as the ``seq``-th start of its task with the run id it is about to get, and only if the
claim is recorded (which it is not once a newer leader took over) does the task start. A
new leader logs every earlier claim the log does not show started as a run that crashed,
so its conditions see that start and do not make it again.
"""

from __future__ import annotations

from control.stores.base import CoordinationStore

import asyncio
import logging
import uuid
from collections.abc import Callable

from rocketry.core import Task

logger = logging.getLogger(__name__)


class Claims:
    def __init__(self, store: CoordinationStore):
        self.store = store
        self.epoch: int | None = None
        self._seq: dict[str, int] = {}
        self._assigned: dict[str, str] = {}  # run id claimed for a task's next start

    async def take_over(self, epoch: int, *, crashed: Callable[[str, str, float], None]) -> None:
        """Lead with ``epoch``: ``crashed(task_name, run_id, started)`` for each start an
        earlier leader claimed and never logged; then continue the count of starts."""
        self.epoch = epoch
        self._assigned.clear()
        for claim in await asyncio.to_thread(self.store.unrecorded_claims, epoch):
            crashed(claim.task_name, claim.run_id, claim.created)
        self._seq = await asyncio.to_thread(self.store.last_claims)

    async def take(self, task: Task) -> bool:
        """Claim ``task``'s next start; False if it must not start (not leading any more)."""
        name, epoch = task.name, self.epoch
        if epoch is None:
            return False
        seq, run_id = self._seq.get(name, 0) + 1, str(uuid.uuid4())
        try:
            claimed = await asyncio.to_thread(self.store.claim, name, seq, run_id, epoch)
        except Exception as exc:
            logger.warning("Cannot claim a start of %r; not starting it: %s", name, exc)
            return False
        if claimed:
            self._seq[name] = seq
            self._assigned[name] = run_id
        return claimed

    def run_id(self, task: Task, params=None) -> str:
        """The run id of a start (Rocketry's ``func_run_id``): the one claimed for it."""
        return self._assigned.pop(task.name, None) or str(uuid.uuid4())
