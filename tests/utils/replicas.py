"""Replicas of the real service on one PostgreSQL schema, and reading what they did from it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from tests.utils.service_process import ServiceProcess
from tests.utils.waiting import wait_until


def session(service: ServiceProcess) -> dict | None:
    """``GET /session`` of ``service``, or None when it does not answer."""
    try:
        response = service.client.get("/session", timeout=2)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def role(service: ServiceProcess) -> str | None:
    info = session(service)
    return info["role"] if info else None


def wait_leader(services: list[ServiceProcess], *, timeout: float = 10.0, other_than=None) -> ServiceProcess:
    """The one replica of ``services`` that says it leads (and only one does)."""

    def one_leader():
        leading = [s for s in services if s is not other_than and role(s) == "leader"]
        return leading[0] if len(leading) == 1 else None

    return wait_until(one_leader, timeout=timeout, what="exactly one leader")


@dataclass(frozen=True)
class Run:
    task: str
    run_id: str
    started: float
    epoch: int | None
    outcome: str | None
    ended: float | None = None


def runs(url: str) -> list[Run]:
    """Every run in the log, with its outcome (None: none yet)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT task_name, action, run_id, created, epoch FROM task_log WHERE run_id IS NOT NULL"
                )
            ).all()
    finally:
        engine.dispose()
    started: dict[str, tuple] = {}
    ended: dict[str, tuple[str, float]] = {}
    for task, action, run_id, created, epoch in rows:
        if action == "run":
            started[run_id] = (task, created, epoch)
        else:
            ended[run_id] = (action, created)
    return sorted(
        (
            Run(task, run_id, created, epoch, *ended.get(run_id, (None, None)))
            for run_id, (task, created, epoch) in started.items()
        ),
        key=lambda run: run.started,
    )


def double_starts(all_runs: list[Run], *, every: float) -> list[tuple[Run, Run]]:
    """Pairs of starts of one task closer than its period allows: one due time started twice."""
    last: dict[str, Run] = {}
    doubles = []
    for run in all_runs:
        previous = last.get(run.task)
        if previous is not None and run.started - previous.started < every * 0.5:
            doubles.append((previous, run))
        last[run.task] = run
    return doubles


def first_start_after(url: str, moment: float, *, epoch_above: int) -> Run:
    """The first run started after ``moment`` by a leader of a later epoch (waits for it)."""

    def found():
        later = [r for r in runs(url) if r.started >= moment and (r.epoch or 0) > epoch_above]
        return later[0] if later else None

    return wait_until(found, timeout=15, what=f"a start by a leader after epoch {epoch_above}")


def now() -> float:
    return time.time()
