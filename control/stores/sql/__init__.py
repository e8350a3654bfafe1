"""The stores on SQLAlchemy 2: SQLite (the embedded default), PostgreSQL, MariaDB or MySQL."""

from __future__ import annotations

from control.stores.base import StoreOpenError, Stores, WorkerStores
from control.stores.sql.audit import SQLAuditStore
from control.stores.sql.coordination import open_coordination
from control.stores.sql.definitions import SQLDefinitionStore
from control.stores.sql.engine import create_engine, redacted, short
from control.stores.sql.logs import SQLLogStore
from control.stores.sql.migrations import migrate
from control.stores.sql.remote import SQLRemoteRunStore
from control.stores.sql.retention import Retention
from control.stores.sql.tables import remote_runs

import sqlalchemy as sa

__all__ = ["Retention", "open_stores", "open_worker_stores"]


def open_stores(
    url: str,
    *,
    retention: Retention | None = None,
    stuck_after: float = 5.0,
    start_writer: bool = True,
    schema_lock_timeout: float = 120.0,
) -> Stores:
    """Every store on the database at ``url`` (a SQLAlchemy URL, see ``engine.database_url``),
    its schema made or upgraded to the newest revision (``migrations``; waiting at most
    ``schema_lock_timeout`` seconds for another process doing so); ``StoreOpenError`` saying
    why, in one line, if it cannot be opened."""
    engine = None
    try:
        engine = create_engine(url)
        migrate(engine, timeout=schema_lock_timeout)
        coordination = open_coordination(engine)
    except (sa.exc.SQLAlchemyError, OSError, StoreOpenError) as exc:
        if engine is not None:
            engine.dispose()
        raise StoreOpenError(f"cannot open the database {redacted(url)}: {short(exc)}") from exc
    logs = SQLLogStore(engine, retention=retention, stuck_after=stuck_after, start=start_writer)

    def close() -> None:
        logs.close()
        coordination.close()
        engine.dispose()

    return Stores(
        logs=logs,
        output=logs,
        audit=SQLAuditStore(engine),
        definitions=SQLDefinitionStore(engine),
        coordination=coordination,
        remote=SQLRemoteRunStore(engine),
        database=redacted(url),
        closer=close,
    )


def open_worker_stores(url: str) -> WorkerStores:
    """The stores a worker writes to, on the service's database (made by the service: a
    worker never changes the schema, and takes no part in leading)."""
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.select(remote_runs.c.run_id).limit(1))
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise StoreOpenError(
            f"cannot use the database {redacted(url)} (start the service on it first): {short(exc)}"
        ) from exc
    output = SQLLogStore(engine)

    def close() -> None:
        output.close()
        engine.dispose()

    return WorkerStores(output=output, remote=SQLRemoteRunStore(engine), closer=close)
