"""SQLAuditStore: the audit trail in the service's database."""

from __future__ import annotations

from control.paging import Cursor
from control.stores.base import AuditEntry, AuditQuery, AuditStore
from control.stores.sql.engine import delete_in_chunks, matching, newest_first, short
from control.stores.sql.tables import audit_log
from control.text import storable

import logging
import threading

import sqlalchemy as sa

logger = logging.getLogger(__name__)


class SQLAuditStore(AuditStore):
    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self._failed = 0
        self._lock = threading.Lock()

    @property
    def failed(self) -> int:
        return self._failed

    def record(self, entry: AuditEntry) -> None:
        values = {
            "created": entry.created,
            "actor": storable(entry.actor)[:100],
            "client": None if entry.client is None else storable(entry.client)[:100],
            "method": entry.method[:10],
            "route": storable(entry.route)[:200],
            "task": None if entry.task is None else storable(entry.task)[:255],
            "status": entry.status,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(audit_log.insert(), values)
        except Exception as exc:  # an audit write never fails the request or the service
            with self._lock:
                self._failed += 1
            logger.error(
                "could not record %s %s by %s in the audit trail: %s",
                entry.method,
                entry.route,
                entry.actor,
                short(exc),
            )

    def prune(self, *, now: float, days: float) -> int:
        removed = delete_in_chunks(self._engine, audit_log, audit_log.c.created < now - days * 86_400)
        if removed:
            logger.info("pruned %d audit entries", removed)
        return removed

    def page(self, query: AuditQuery) -> tuple[list[AuditEntry], Cursor | None]:
        one_of = {"actor": query.actors, "task": query.tasks}
        where = matching(audit_log, one_of=one_of, since=query.since, until=query.until)
        with self._engine.connect() as conn:
            rows, cursor = newest_first(conn, audit_log, where, limit=query.limit, cursor=query.cursor)
        return [AuditEntry(**row._mapping) for row in rows], cursor
