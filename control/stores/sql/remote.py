"""SQLRemoteRunStore: runs on workers, one row each from the send until a leader settles it.

Every change is one short statement, conditional where two parties may race: a worker takes
a run only if nobody took or forgot it, and a leader forgets an untaken run only if no
worker took it meanwhile.
"""

from __future__ import annotations

from control.stores.base import RemoteRun, RemoteRunStore
from control.stores.sql.tables import remote_runs

from typing import Any

import sqlalchemy as sa

_FIELDS = tuple(column.name for column in remote_runs.columns)
_IN_ONE_QUERY = 500


class SQLRemoteRunStore(RemoteRunStore):
    def __init__(self, engine: sa.Engine):
        self._engine = engine

    def sent(self, run_id: str, task_name: str, payload: dict[str, Any], when: float) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                remote_runs.insert().values(run_id=run_id, task_name=task_name, payload=payload, sent=when)
            )

    def take(self, run_id: str, worker: str, when: float) -> bool:
        c = remote_runs.c
        with self._engine.begin() as conn:
            taken = conn.execute(
                remote_runs.update()
                .where(c.run_id == run_id, c.started.is_(None))
                .values(worker=worker[:255], started=when, beat=when)
            )
        return taken.rowcount == 1

    def beat(self, run_ids: list[str], when: float) -> None:
        if not run_ids:
            return
        c = remote_runs.c
        with self._engine.begin() as conn:
            conn.execute(
                remote_runs.update().where(c.run_id.in_(run_ids), c.outcome.is_(None)).values(beat=when)
            )

    def end(
        self, run_id: str, outcome: str, when: float, *, message: str | None, exc_text: str | None
    ) -> None:
        c = remote_runs.c
        with self._engine.begin() as conn:
            conn.execute(
                remote_runs.update()
                .where(c.run_id == run_id, c.outcome.is_(None))
                .values(outcome=outcome, ended=when, message=message, exc_text=exc_text)
            )

    def states(self, run_ids: list[str]) -> list[RemoteRun]:
        found: list[RemoteRun] = []
        with self._engine.connect() as conn:
            for at in range(0, len(run_ids), _IN_ONE_QUERY):
                chunk = run_ids[at : at + _IN_ONE_QUERY]
                rows = conn.execute(sa.select(remote_runs).where(remote_runs.c.run_id.in_(chunk)))
                found += [RemoteRun(**{name: row._mapping[name] for name in _FIELDS}) for row in rows]
        return found

    def forget(self, run_id: str, *, unless_taken: bool = False) -> bool:
        c = remote_runs.c
        where = [c.run_id == run_id] + ([c.started.is_(None)] if unless_taken else [])
        with self._engine.begin() as conn:
            return conn.execute(remote_runs.delete().where(*where)).rowcount == 1
