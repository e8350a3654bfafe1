"""SQLDefinitionStore: runtime tasks, edits of code tasks, their versions, and session parameters."""

from __future__ import annotations

from control.paging import Cursor
from control.stores.base import DefinitionStore, StoredDefinition, Version, VersionQuery
from control.stores.sql.engine import matching, newest_first, notify_replicas
from control.stores.sql.tables import session_parameters, task_definitions, task_versions
from control.text import storable, storable_json

import time
from typing import Any

import sqlalchemy as sa


class SQLDefinitionStore(DefinitionStore):
    def __init__(self, engine: sa.Engine):
        self._engine = engine

    def load(self) -> tuple[list[StoredDefinition], dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(task_definitions).order_by(task_definitions.c.name)).all()
            params = conn.execute(sa.select(session_parameters.c.name, session_parameters.c.value)).all()
        definitions = [_definition(row) for row in rows]
        return definitions, {storable(name): storable_json(value) for name, value in params}

    def load_one(self, name: str) -> StoredDefinition | None:
        stmt = sa.select(task_definitions).where(task_definitions.c.name == name)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _definition(row)

    def save(self, definition: StoredDefinition | None, version: Version, *, name: str) -> Version:
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
            notify_replicas(conn, "definitions", name)
        return Version(**(values | {"id": new_id}))

    def versions(self, name: str, query: VersionQuery) -> tuple[list[Version], Cursor | None]:
        where = matching(task_versions, one_of={"task_name": (name,)}, since=query.since, until=query.until)
        with self._engine.connect() as conn:
            rows, next_cursor = newest_first(
                conn, task_versions, where, limit=query.limit, cursor=query.cursor
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
            notify_replicas(conn, "definitions")

    def delete_parameter(self, name: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(sa.delete(session_parameters).where(session_parameters.c.name == name))
            notify_replicas(conn, "definitions")
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
