"""AuditService: the audit trail read back (newest first), and pruned by age in the background."""

from __future__ import annotations

from control.schemas.audit import AuditFilter, AuditList, AuditRecordPublic
from control.stores.base import AuditEntry, AuditQuery, AuditStore
from control.times import utc

import asyncio
import logging
import time

logger = logging.getLogger(__name__)


class AuditService:
    def __init__(self, store: AuditStore, *, retention_days: float | None, every: float):
        self._store = store
        self._days = retention_days
        self._every = every

    def record(self, entry: AuditEntry) -> None:
        """Keep ``entry``; blocking (call it off the event loop), never raising."""
        self._store.record(entry)

    @property
    def failed(self) -> int:
        return self._store.failed

    async def page(self, filters: AuditFilter) -> AuditList:
        since, until = filters.window()
        query = AuditQuery(
            actors=tuple(filters.actor),
            tasks=tuple(filters.task),
            since=since,
            until=until,
            limit=filters.limit,
            cursor=filters.decoded_cursor(),
        )
        entries, cursor = await asyncio.to_thread(self._store.page, query)
        return AuditList(
            data=[AuditRecordPublic(**{**vars_of(e), "created": utc(e.created)}) for e in entries],
            next_cursor=cursor.encode() if cursor else None,
        )

    async def keep_pruned(self) -> None:
        """Prune entries older than the retention every interval, off the event loop."""
        if self._days is None:
            return
        delay = min(self._every, 5.0)
        while True:
            await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self._store.prune, now=time.time(), days=self._days)
            except Exception as exc:  # the database may be away; the next pass tries again
                logger.warning("pruning the audit trail failed: %s", str(exc).splitlines()[0])
            delay = self._every


def vars_of(entry: AuditEntry) -> dict:
    return {name: getattr(entry, name) for name in AuditEntry.__slots__}
