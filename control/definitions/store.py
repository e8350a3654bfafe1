"""SQLDefinitionStore: runtime tasks, edits of code tasks, their versions, and session parameters."""

from __future__ import annotations

from control.logstores.base import LogCursor
from control.paging import newest_first
from control.text import storable, storable_json

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

task_definitions = sa.Table(
    "task_definitions",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    # "runtime": the whole task; "code": the fields edited over the task's code definition.
    sa.Column("origin", sa.String(10), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("updated", sa.Double(), nullable=False),
)

task_versions = sa.Table(
    "task_versions",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("task_name", sa.String(255), nullable=False),
    sa.Column("created", sa.Double(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("client", sa.String(100)),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("changes", sa.JSON(), nullable=False),
    sa.Column("reason", sa.String(1000)),
    # The stored definition after the change (null after a delete): what a restore applies.
    sa.Column("origin", sa.String(10), nullable=False),
    sa.Column("definition", sa.JSON()),
    sa.Index("ix_task_versions_task_created", "task_name", "created", "id"),
    sa.Index("ix_task_versions_created", "created", "id"),
)

session_parameters = sa.Table(
    "session_parameters",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.JSON()),
    sa.Column("updated", sa.Double(), nullable=False),
)


@dataclass(frozen=True)
class StoredDefinition:
    name: str
    origin: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Version:
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


class SQLDefinitionStore:
    """Every method blocks on the database: call them off the event loop."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        metadata.create_all(engine)

    def load(self) -> tuple[list[StoredDefinition], dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(task_definitions).order_by(task_definitions.c.name)).all()
            params = conn.execute(sa.select(session_parameters.c.name, session_parameters.c.value)).all()
        definitions = [_definition(row) for row in rows]
        return definitions, {storable(name): storable_json(value) for name, value in params}

    def get(self, name: str) -> StoredDefinition | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(task_definitions).where(task_definitions.c.name == name)).first()
        return _definition(row) if row else None

    def save(self, definition: StoredDefinition | None, version: Version, *, name: str) -> Version:
        """Replace (or with None, remove) ``name``'s stored definition and record the version,
        in one transaction."""
        now = time.time()
        with self._engine.begin() as conn:
            conn.execute(sa.delete(task_definitions).where(task_definitions.c.name == name))
            if definition is not None:
                conn.execute(
                    task_definitions.insert().values(
                        name=name, origin=definition.origin, fields=definition.fields, updated=now
                    )
                )
            values = {k: v for k, v in vars(version).items() if k != "id"} | {"created": now}
            new_id = conn.execute(task_versions.insert().values(**values)).inserted_primary_key[0]
        return Version(**(values | {"id": new_id}))

    def versions(
        self, name: str, *, limit: int, cursor: LogCursor | None
    ) -> tuple[list[Version], LogCursor | None]:
        with self._engine.connect() as conn:
            rows, next_cursor = newest_first(
                conn, task_versions, [task_versions.c.task_name == name], limit=limit, cursor=cursor
            )
        return [_version(row) for row in rows], next_cursor

    def version(self, name: str, version_id: int) -> Version | None:
        t = task_versions.c
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(task_versions).where(t.task_name == name, t.id == version_id)
            ).first()
        return _version(row) if row else None

    def set_parameter(self, name: str, value: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(sa.delete(session_parameters).where(session_parameters.c.name == name))
            conn.execute(session_parameters.insert().values(name=name, value=value, updated=time.time()))

    def delete_parameter(self, name: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(sa.delete(session_parameters).where(session_parameters.c.name == name))
        return result.rowcount > 0


# What was stored before text was checked at the door may hold strings that cannot be
# encoded; reads make them storable, so that such a row cannot break an answer.


def _definition(row) -> StoredDefinition:
    return StoredDefinition(storable(row.name), row.origin, storable_json(dict(row.fields)))


def _version(row) -> Version:
    values = dict(row._mapping)
    for key in ("task_name", "actor", "client", "reason"):
        if values.get(key) is not None:
            values[key] = storable(values[key])
    values["changes"] = storable_json(values["changes"])
    values["definition"] = storable_json(values["definition"])
    return Version(**values)
