"""Replicas on PostgreSQL: failover after a leader is killed, handover when it stops, run-now
on the leader and on a follower, and how fast an edit on a follower reaches the leader.

    python bench/replicas.py [--kills 20] [--stops 10] [--runs 50]

Three replicas of ``python main.py`` share a fresh PostgreSQL database
(``SCHEDULER_BENCH_POSTGRES``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``
as the server to create it on), with 20 tasks due every second.

- Failover: from SIGKILL of the leader to the first start by the next leader (read from
  the log: the first run record of a later epoch).
- Handover: from SIGTERM of the leader to another replica saying it leads.
- Run-now: from sending ``POST /tasks/mark_async/run`` to the task's first line.
- Edit: from sending ``PATCH`` on a follower to the leader showing the new condition.
"""

import argparse
import os
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from common import Service, ms, percentile
from run_now import measure

SERVER = os.environ.get("SCHEDULER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ENV = {"BENCH_FAST_TASKS": "20", "BENCH_FAST_CONDITION": "every 1 seconds", "SCHEDULER_CYCLE_SLEEP": "0.05"}


def fresh_database() -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return sa.engine.make_url(SERVER).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    engine = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


class Group:
    def __init__(self, workdir: Path, url: str):
        self.workdir, self.url = workdir, url
        self.members: list[Service] = []
        self.engine = sa.create_engine(url)

    def add(self) -> Service:
        service = Service(self.workdir, tasks=0, env=ENV, database=self.url)
        self.members.append(service.__enter__())
        return service

    def session(self, service: Service) -> dict | None:
        try:
            return service.client.get("/session", timeout=2).json()
        except Exception:
            return None

    def leader(self, *, timeout: float = 15.0, among=None) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leading = [s for s in among or self.members if (self.session(s) or {}).get("role") == "leader"]
            if len(leading) == 1:
                return leading[0]
            time.sleep(0.01)
        raise RuntimeError("no single leader")

    def first_start(self, after: float, epoch: int, timeout: float = 20.0) -> float:
        query = sa.text(
            "SELECT min(created) FROM task_log WHERE action = 'run' AND created >= :t AND epoch > :e"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                found = conn.execute(query, {"t": after, "e": epoch}).scalar()
            if found is not None:
                return found
            time.sleep(0.02)
        raise RuntimeError("the next leader started nothing")

    def remove(self, service: Service) -> None:
        self.members.remove(service)
        service.__exit__(None, None, None)

    def close(self) -> None:
        for service in list(self.members):
            self.remove(service)
        self.engine.dispose()


def failovers(group: Group, kills: int) -> list[float]:
    gaps = []
    for _ in range(kills):
        leader = group.leader()
        epoch = group.session(leader)["epoch"]
        time.sleep(2)  # it leads and launches for a while
        leader.process.kill()
        killed = time.time()
        group.remove(leader)
        gaps.append(group.first_start(killed, epoch) - killed)
        group.add()
    return gaps


def handovers(group: Group, stops: int) -> list[float]:
    gaps = []
    for _ in range(stops):
        leader = group.leader()
        others = [s for s in group.members if s is not leader]
        time.sleep(1)
        leader.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        group.leader(among=others)
        gaps.append(time.monotonic() - stopped)
        group.remove(leader)
        group.add()
    return gaps


def edits(group: Group, count: int) -> list[float]:
    leader = group.leader()
    follower = next(s for s in group.members if s is not leader)
    values = []
    for i in range(count):
        condition = f"every {100 + i} seconds"
        sent = time.monotonic()
        response = follower.client.patch("/tasks/f00000", json={"start_cond": condition})
        if response.status_code != 200:
            raise RuntimeError(response.text)
        while leader.client.get("/tasks/f00000").json()["start_cond"] != condition:
            time.sleep(0.0005)
        values.append(time.monotonic() - sent)
    return values


def row(label: str, values: list[float], unit: str = "s") -> str:
    show = ms if unit == "ms" else (lambda value: f"{value:.2f}")
    figures = (statistics.median(values), percentile(values, 95), max(values))
    return f"| {label} | {len(values)} | " + " | ".join(show(value) for value in figures) + " |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--stops", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    url = fresh_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            group = Group(Path(tmp), url)
            try:
                for _ in range(3):
                    group.add()
                leader = group.leader()
                follower = next(s for s in group.members if s is not leader)
                time.sleep(3)
                on_leader = measure(leader, "mark_async", args.runs)
                on_follower = measure(follower, "mark_async", args.runs)
                edit = edits(group, args.runs)
                handover = handovers(group, args.stops)
                failover = failovers(group, args.kills)
            finally:
                group.close()
    finally:
        drop_database(url)
    print("| measure | n | p50 | p95 | max |")
    print("|---|---|---|---|---|")
    print(row("failover, s (SIGKILL → first start by the next leader)", failover))
    print(row("handover, s (SIGTERM → another replica leads)", handover))
    print(row("run-now on the leader, ms", on_leader, "ms"))
    print(row("run-now on a follower, ms", on_follower, "ms"))
    print(row("edit on a follower seen on the leader, ms", edit, "ms"))


if __name__ == "__main__":
    main()
