"""Replicas of the real service (``python main.py``) on one PostgreSQL schema: one leads, a
killed, stopped or cut-off leader is replaced without a start happening twice, and every
replica serves the whole API."""

from control.stores.sql.engine import lock_key_sql

import asyncio
import signal
import time

import httpx
import pytest
import sqlalchemy as sa

from tests.utils.replicas import double_starts, first_start_after, role, runs, session, wait_leader
from tests.utils.streams import read_events
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PACKAGES = '["tests.support_tasks_cluster"]'
LEADER_KEY = lock_key_sql("leader")
EVERY = 1.0


@pytest.fixture
def replicas(postgres_schema_url, start):  # the schema outlives the replicas: dropped after they stop
    def _start(count: int, *, tasks: int = 10) -> list:
        env = {"CLUSTER_TASKS": str(tasks), "CLUSTER_EVERY": f"{EVERY:g}"}
        return [start(database=postgres_schema_url, packages=PACKAGES, env=env) for _ in range(count)]

    return _start


def test_a_killed_leader_is_replaced_within_5_s_and_no_start_happens_twice(replicas, postgres_schema_url):
    url = postgres_schema_url
    group = replicas(3)
    leader = wait_leader(group)
    epoch = session(leader)["epoch"]
    wait_until(lambda: len(runs(url)) >= 20, timeout=15, what="runs by the first leader")
    leader.process.kill()
    killed_at = time.time()
    survivors = [replica for replica in group if replica is not leader]
    wait_leader(survivors, timeout=10)
    first = first_start_after(url, killed_at, epoch_above=epoch)
    assert first.started - killed_at <= 5.0
    wait_until(lambda: runs(url)[-1].started > first.started + 3, timeout=10, what="the new leader going on")
    every_run = runs(url)
    assert double_starts(every_run, every=EVERY) == []
    # Each run of the killed leader has an outcome: its own, or crash (from its successor).
    assert [run for run in every_run if run.epoch == epoch and run.outcome is None] == []
    assert all(role(replica) in ("leader", "follower") for replica in survivors)


def test_a_leader_that_stops_hands_over_in_under_a_second(replicas, postgres_schema_url):
    group = replicas(2, tasks=3)
    leader = wait_leader(group)
    follower = next(replica for replica in group if replica is not leader)
    leader.send(signal.SIGTERM)
    stopped_at = time.monotonic()
    wait_until(lambda: role(follower) == "leader", timeout=5, interval=0.01, what="the follower leads")
    assert time.monotonic() - stopped_at < 1.0
    assert leader.wait_exit() == 0
    assert session(follower)["leader"] == session(follower)["replica"]


def test_a_leader_cut_from_the_database_stops_launching_before_another_starts(replicas, postgres_schema_url):
    url = postgres_schema_url
    group = replicas(2)
    leader = wait_leader(group)
    epoch = session(leader)["epoch"]
    wait_until(lambda: len(runs(url)) >= 10, timeout=15, what="runs by the first leader")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # The session holding the launch right (its advisory key; see coordination.py).
        cut = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT a.pid FROM pg_stat_activity a "
                "JOIN pg_locks l ON l.pid = a.pid WHERE a.application_name = 'rocketry-control coordinator' "
                f"AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                f"AND l.objid = (({LEADER_KEY})::bigint & 4294967295)::oid) AS holder"
            )
        ).all()
    engine.dispose()
    assert cut == [(True,)]
    cut_at = time.time()
    first = first_start_after(url, cut_at, epoch_above=epoch)
    last_of_old = max(run.started for run in runs(url) if run.epoch == epoch)
    assert last_of_old < first.started
    assert first.started - cut_at <= 5.0
    wait_until(lambda: role(leader) == "follower", timeout=10, what="the cut-off leader follows")
    assert double_starts(runs(url), every=EVERY) == []


def test_every_replica_serves_the_api_and_edits_reach_all_within_a_second(replicas, postgres_schema_url):
    group = replicas(3, tasks=2)
    leader = wait_leader(group)
    asked, third = [replica for replica in group if replica is not leader]

    edited = asked.client.patch("/tasks/c000", json={"start_cond": "every 3 seconds"})
    assert edited.status_code == 200, edited.text
    edited_at = time.monotonic()
    wait_until(
        lambda: all(r.task("c000")["start_cond"] == "every 3 seconds" for r in (leader, third)),
        timeout=2,
        interval=0.01,
        what="the edit on every replica",
    )
    assert time.monotonic() - edited_at < 1.0

    events = f"{third.client.base_url}/events"
    with httpx.stream("GET", events, params={"task": "sleeper"}, timeout=10) as stream:
        lines = stream.iter_lines()
        assert asked.client.post("/tasks/sleeper/run").status_code == 202
        started = read_events(lines, 1, kinds={"run"})
        assert started[0]["data"]["task_name"] == "sleeper"
        leader.wait_task("sleeper", lambda task: task["is_running"])
        again = asked.client.post("/tasks/sleeper/run")
        assert again.status_code == 409 and "already running" in again.json()["detail"]
        assert asked.client.post("/tasks/sleeper/terminate").status_code == 202
        ended = read_events(lines, 1, kinds={"terminate", "success", "fail", "crash"})
        assert ended[0]["event"] == "terminate"
    assert asked.client.post("/tasks/sleeper/terminate").status_code == 409
    assert asked.client.post("/tasks/nothing/run").status_code == 404
    assert third.task("sleeper")["status"] == "terminate"  # followed from the leader's records


def test_a_burst_of_run_requests_on_a_follower_starts_each_run_once(replicas, postgres_schema_url):
    group = replicas(2, tasks=0)
    leader = wait_leader(group)
    follower = next(replica for replica in group if replica is not leader)
    names = [f"burst{i:02d}" for i in range(20)]
    for name in names:
        created = follower.client.post(
            "/tasks", json={"name": name, "func": "tests.support_tasks.probes:quick"}
        )
        assert created.status_code == 201, created.text

    async def burst():
        async with httpx.AsyncClient(base_url=str(follower.client.base_url), timeout=30) as client:
            return await asyncio.gather(*(client.post(f"/tasks/{name}/run") for name in names))

    answers = asyncio.run(burst())
    assert [answer.status_code for answer in answers] == [202] * len(names), [a.text for a in answers]
    wait_until(
        lambda: len([r for r in runs(postgres_schema_url) if r.outcome]) >= len(names), what="the runs"
    )
    started = [run.task for run in runs(postgres_schema_url)]
    assert sorted(started) == names  # each once


def test_a_frozen_leader_is_unseated_and_stays_out_when_it_wakes(replicas, postgres_schema_url):
    """SIGSTOP: the process is there, its connection open, the lock held; nothing answers."""
    url = postgres_schema_url
    group = replicas(2)
    leader = wait_leader(group)
    follower = next(replica for replica in group if replica is not leader)
    epoch = session(leader)["epoch"]
    wait_until(lambda: len(runs(url)) >= 10, timeout=15, what="runs by the first leader")
    leader.send(signal.SIGSTOP)
    frozen_at = time.time()
    try:
        first = first_start_after(url, frozen_at, epoch_above=epoch)
        assert first.started - frozen_at <= 8.0
        assert role(follower) == "leader"
    finally:
        leader.send(signal.SIGCONT)
    wait_until(lambda: role(leader) == "follower", timeout=10, what="the woken leader following")
    wait_until(lambda: runs(url)[-1].started > time.time() - 1, timeout=10, what="starts going on")
    assert double_starts(runs(url), every=EVERY) == []
    assert {run.epoch for run in runs(url) if run.started > first.started} == {session(follower)["epoch"]}
