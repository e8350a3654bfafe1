"""Replicas on PostgreSQL: failover after a leader is killed, handover when it stops, run-now
on the leader and on a follower, and how fast an edit on a follower reaches the others.

    python bench/replicas.py [--kills 20] [--stops 10] [--runs 50]

Three replicas of ``python main.py`` share a fresh PostgreSQL database (made on
``SCHEDULER_BENCH_POSTGRES``, see ``common.py``, and dropped after), with 20 tasks due every
second. Times across processes are wall-clock times of this one machine.

- Failover: from SIGKILL of the leader to the next leader taking the leadership (the
  ``since`` of the leadership row) and to its first start (the first run record of a later
  epoch that is a real start, not a start the killed leader claimed and the new one settled).
- Handover: the same from SIGTERM of the leader. The tasks are due every second, so the
  first start after a handover also waits for the next due time (up to 1 s).
- Run-now: from sending ``POST /tasks/mark_async/run`` to the task's first line.
- Edit: from sending ``PATCH /tasks/f00000`` on a follower to ``GET /tasks/f00000`` showing
  the new condition on the leader and on the other follower (each polled by a thread of
  its own, about every millisecond), next to the PATCH's own answer.
"""

import argparse
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from common import Service, ms, percentile, postgres_database
from run_now import measure

ENV = {"BENCH_FAST_TASKS": "20", "BENCH_FAST_CONDITION": "every 1 seconds", "SCHEDULER_CYCLE_SLEEP": "0.05"}

# A start the previous leader claimed and never logged is logged by its successor as a run
# (started when it was claimed, so before the kill) and its crash: not a start of its own.
FIRST_START = sa.text(
    "SELECT min(created) FROM task_log WHERE action = 'run' AND epoch > :epoch "
    "AND created >= :after AND start >= :after"
)
ELECTED = sa.text("SELECT since FROM leadership WHERE epoch > :epoch")


class Group:
    """Replicas on one database, and what their shared tables say."""

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

    def _poll(self, query: sa.TextClause, params: dict, timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                found = conn.execute(query, params).scalar()
            if found is not None:
                return found
            time.sleep(0.02)
        raise RuntimeError(what)

    def elected(self, epoch: int, timeout: float = 20.0) -> float:
        """When a leader of an epoch after ``epoch`` took the leadership (wall clock)."""
        return self._poll(ELECTED, {"epoch": epoch}, timeout, "nobody took the leadership")

    def first_start(self, after: float, epoch: int, timeout: float = 20.0) -> float:
        """When a leader of an epoch after ``epoch`` first started a task (wall clock)."""
        return self._poll(
            FIRST_START, {"after": after, "epoch": epoch}, timeout, "the next leader started nothing"
        )

    def remove(self, service: Service) -> None:
        self.members.remove(service)
        service.__exit__(None, None, None)

    def close(self) -> None:
        for service in list(self.members):
            self.remove(service)
        self.engine.dispose()


def leader_changes(group: Group, count: int, sig: signal.Signals) -> tuple[list[float], list[float]]:
    """``count`` times: send ``sig`` to the leader; seconds to the next leadership and to
    the next leader's first start. The replica is then replaced, so three always run."""
    to_leader, to_start = [], []
    for _ in range(count):
        leader = group.leader()
        epoch = group.session(leader)["epoch"]
        time.sleep(2)  # it leads and launches for a while
        leader.process.send_signal(sig)
        sent = time.time()
        to_leader.append(group.elected(epoch) - sent)
        to_start.append(group.first_start(sent, epoch) - sent)
        group.remove(leader)
        group.add()
    return to_leader, to_start


def _seen(service: Service, condition: str, out: list, index: int) -> None:
    """Poll ``service`` until it shows ``condition``; note when in ``out[index]``."""
    with httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=10) as client:
        while client.get("/tasks/f00000").json()["start_cond"] != condition:
            time.sleep(0.001)
    out[index] = time.monotonic()


def edits(group: Group, count: int) -> dict[str, list[float]]:
    leader = group.leader()
    editor, other = (s for s in group.members if s is not leader)
    values = {"answer": [], "leader": [], "follower": []}
    for i in range(count):
        condition = f"every {100 + i} seconds"
        seen = [0.0, 0.0]
        watchers = [
            threading.Thread(target=_seen, args=(replica, condition, seen, j))
            for j, replica in enumerate((leader, other))
        ]
        for watcher in watchers:
            watcher.start()
        time.sleep(0.05)  # the watchers are polling
        sent = time.monotonic()
        response = editor.client.patch("/tasks/f00000", json={"start_cond": condition})
        answered = time.monotonic()
        if response.status_code != 200:
            raise RuntimeError(response.text)
        for watcher in watchers:
            watcher.join(timeout=30)
        values["answer"].append(answered - sent)
        values["leader"].append(seen[0] - sent)
        values["follower"].append(seen[1] - sent)
        time.sleep(0.1)
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
    with postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
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
            handover = leader_changes(group, args.stops, signal.SIGTERM)
            failover = leader_changes(group, args.kills, signal.SIGKILL)
        finally:
            group.close()
    print("| measure | n | p50 | p95 | max |")
    print("|---|---|---|---|---|")
    print(row("failover, s: SIGKILL → the next replica leads", failover[0]))
    print(row("failover, s: SIGKILL → first start by the next leader", failover[1]))
    print(row("handover, s: SIGTERM → the next replica leads", handover[0]))
    print(row("handover, s: SIGTERM → first start by the next leader", handover[1]))
    print(row("run-now on the leader, ms", on_leader, "ms"))
    print(row("run-now on a follower, ms", on_follower, "ms"))
    print(row("edit on a follower: its answer, ms", edit["answer"], "ms"))
    print(row("edit on a follower: seen on the leader, ms", edit["leader"], "ms"))
    print(row("edit on a follower: seen on the other follower, ms", edit["follower"], "ms"))


if __name__ == "__main__":
    main()
