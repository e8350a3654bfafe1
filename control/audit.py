"""The audit trail: every request that changes something, who made it, from where, and how it ended."""

from __future__ import annotations

from control.logstores.base import LogCursor
from control.paging import newest_first
from control.sqlstore import delete_in_chunks
from control.text import storable

import logging
from dataclasses import dataclass

import sqlalchemy as sa

logger = logging.getLogger(__name__)

metadata = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("client", sa.String(100)),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("task", sa.String(255)),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Index("ix_audit_log_created", "created", "id"),
    sa.Index("ix_audit_log_actor_created", "actor", "created", "id"),
    sa.Index("ix_audit_log_task_created", "task", "created", "id"),
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
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
    cursor: LogCursor | None = None


class SQLAuditStore:
    """Audit entries in the service's database (the log store's engine)."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        metadata.create_all(engine)
        self.failed = 0

    def record(self, entry: AuditEntry) -> None:
        """Blocking: call it off the event loop. A failure is logged and counted."""
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
            self.failed += 1
            logger.error(
                "could not record %s %s by %s in the audit trail: %s",
                entry.method,
                entry.route,
                entry.actor,
                str(exc).splitlines()[0],
            )

    def prune(self, *, now: float, days: float) -> int:
        """Remove the entries older than ``days``; blocking."""
        removed = delete_in_chunks(self._engine, audit_log, audit_log.c.created < now - days * 86_400)
        if removed:
            logger.info("pruned %d audit entries", removed)
        return removed

    def page(self, query: AuditQuery) -> tuple[list[AuditEntry], LogCursor | None]:
        t = audit_log.c
        where = []
        if query.actors:
            where.append(t.actor.in_(query.actors))
        if query.tasks:
            where.append(t.task.in_(query.tasks))
        if query.since is not None:
            where.append(t.created >= query.since)
        if query.until is not None:
            where.append(t.created <= query.until)
        with self._engine.connect() as conn:
            rows, cursor = newest_first(conn, audit_log, where, limit=query.limit, cursor=query.cursor)
        return [AuditEntry(**row._mapping) for row in rows], cursor
