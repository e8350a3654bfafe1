"""Tasks on Celery workers, driven through the real service as a user would: their runs,
output, failures, timeouts, terminations, workers that die and a broker that goes away."""

import httpx
import pytest

from tests.utils.replicas import wait_leader
from tests.utils.streams import read_events
from tests.utils.waiting import wait_until
from tests.utils.workers import BROKER_URL, REDIS_BROKER_URL, Forwarder, broker_available

pytestmark = pytest.mark.slow


def create(service, name, func, **fields):
    body = {"name": name, "func": f"tests.support_tasks.probes:{func}", "execution": "celery", **fields}
    response = service.client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def outcome(service, name, run_id=None):
    """The outcome record of the task's (given) run, once there is one."""
    for record in service.logs(task=name):
        if record["action"] != "run" and (run_id is None or record["run_id"] == run_id):
            return record
    return None


def test_a_run_on_a_worker_is_logged_streamed_and_captured_like_a_local_one(celery_up):
    service, _ = celery_up()
    create(service, "remote_chatty", "chatty", parameters={"lines": 3})
    with httpx.stream(
        "GET", f"{service.client.base_url}/events", params={"task": "remote_chatty"}, timeout=20
    ) as stream:
        wait_until(lambda: service.client.get("/session").json()["event_subscribers"] == 1, what="subscribed")
        assert service.client.post("/tasks/remote_chatty/run").status_code == 202
        run, success = read_events(stream, 2, kinds={"run", "success", "fail"})
    assert (run["event"], success["event"]) == ("run", "success")
    run_id = run["data"]["run_id"]
    assert success["data"]["run_id"] == run_id and success["data"]["runtime"] >= 0
    records = service.logs(task="remote_chatty")
    assert [(r["action"], r["run_id"]) for r in records] == [("success", run_id), ("run", run_id)]
    assert all(r["epoch"] == 1 for r in records)
    output = service.client.get(f"/tasks/remote_chatty/runs/{run_id}/output").json()
    assert [(line["stream"], line["text"]) for line in output["lines"]] == [
        ("stdout", "line 0"),
        ("stdout", "line 1"),
        ("stdout", "line 2"),
        ("log", "WARNING tests.chatty: a warning from the task"),
        ("stderr", "to stderr"),
    ]
    task = service.task("remote_chatty")
    assert task["execution"] == "celery" and task["status"] == "success" and not task["is_running"]
    celery = service.client.get("/session").json()["celery"]
    assert celery["sent"] == 1 and celery["following"] == 0 and celery["last_error"] is None


def test_a_failure_on_a_worker_carries_its_traceback(celery_up):
    service, _ = celery_up()
    create(service, "remote_failing", "failing")
    assert service.client.post("/tasks/remote_failing/run").status_code == 202
    record = wait_until(lambda: outcome(service, "remote_failing"), timeout=20, what="the outcome")
    assert record["action"] == "fail"
    assert "Traceback (most recent call last)" in record["exc_text"]
    assert "ValueError: boom from the failing task" in record["exc_text"]
    assert service.task("remote_failing")["status"] == "fail"


def test_the_timeout_applies_on_the_worker_and_overlap_across_workers(celery_up):
    service, _ = celery_up(workers_count=2)
    create(service, "remote_nap", "nap", parameters={"seconds": 60}, timeout=1.5)
    assert service.client.post("/tasks/remote_nap/run").status_code == 202
    # Two workers with free slots, but one run at a time: the task's overlap policy is "skip".
    refused = service.client.post("/tasks/remote_nap/run")
    assert refused.status_code == 409, refused.text
    record = wait_until(lambda: outcome(service, "remote_nap"), timeout=20, what="the timeout")
    assert record["action"] == "terminate" and "timeout" in record["message"], record
    assert 1.5 <= record["runtime"] < 10
    assert not service.task("remote_nap")["is_running"]


def test_terminate_stops_a_running_run_on_its_worker(celery_up):
    service, (worker,) = celery_up()
    create(service, "remote_ticker", "ticker", parameters={"count": 100000, "pause": 0.05})
    assert service.client.post("/tasks/remote_ticker/run").status_code == 202
    run_id = service.logs(task="remote_ticker")[0]["run_id"]

    def lines():
        return len(service.client.get(f"/tasks/remote_ticker/runs/{run_id}/output").json()["lines"])

    wait_until(lambda: lines() >= 3, timeout=20, what="the run ticking on the worker")
    pool = {process.pid for process in worker.pool()}
    assert service.client.post("/tasks/remote_ticker/terminate").status_code == 202
    record = wait_until(lambda: outcome(service, "remote_ticker"), timeout=10, what="the termination")
    assert record["action"] == "terminate" and "terminated on request" in record["message"]
    # The worker's pool process running it was signalled, and replaced: the run is over there too.
    wait_until(
        lambda: f"Terminating {run_id} (15)" in worker.log(), timeout=10, what="the worker terminating it"
    )
    wait_until(lambda: pool - {process.pid for process in worker.pool()}, timeout=10, what="the process gone")
    seen = lines()
    assert seen >= 3 and "tick" in worker.log().rsplit("Terminating", 1)[0]
    assert service.task("remote_ticker")["status"] == "terminate"


def test_a_worker_killed_mid_run_leaves_a_crash(celery_up):
    service, (worker,) = celery_up()
    create(service, "remote_long", "ticker", parameters={"count": 100000, "pause": 0.05})
    assert service.client.post("/tasks/remote_long/run").status_code == 202
    run_id = service.logs(task="remote_long")[0]["run_id"]
    output = f"/tasks/remote_long/runs/{run_id}/output"
    wait_until(
        lambda: service.client.get(output).json()["lines"], timeout=20, what="the run going on the worker"
    )
    worker.kill()
    record = wait_until(lambda: outcome(service, "remote_long"), timeout=20, what="the crash")
    assert record["action"] == "crash" and record["run_id"] == run_id
    assert "stopped answering" in record["message"]
    assert not service.task("remote_long")["is_running"]


def test_a_broker_outage_degrades_health_and_loses_no_acknowledged_run(celery_up):
    host, port = "127.0.0.1", int(BROKER_URL.rsplit(":", 1)[1].split("/")[0])
    forwarder = Forwarder((host, port))
    try:
        through = BROKER_URL.replace(f":{port}", f":{forwarder.port}")
        service, _ = celery_up(broker=through)
        create(service, "remote_quick", "quick")
        wait_until(lambda: service.client.get("/health").json()["status"] == "ok", timeout=10, what="healthy")
        forwarder.cut()
        health = wait_until(
            lambda: (h := service.client.get("/health").json())["status"] == "degraded" and h,
            timeout=15,
            what="health degraded",
        )
        assert health["broker_error"] and health["scheduler"] == "running"
        assert service.client.post("/tasks/remote_quick/run").status_code == 202
        assert service.task("remote_quick")["is_running"]
        forwarder.restore()
        record = wait_until(
            lambda: outcome(service, "remote_quick"), timeout=30, what="the run after the outage"
        )
        assert record["action"] == "success"
        wait_until(
            lambda: service.client.get("/health").json()["status"] == "ok", timeout=15, what="healthy again"
        )
    finally:
        forwarder.close()


def test_a_code_task_moved_to_celery_runs_on_a_worker(celery_up):
    service, _ = celery_up()
    moved = service.client.patch("/tasks/quick", json={"execution": "celery"})
    assert moved.status_code == 200 and moved.json()["execution"] == "celery", moved.text
    assert service.client.post("/tasks/quick/run").status_code == 202
    assert wait_until(lambda: outcome(service, "quick"), timeout=20)["action"] == "success"


@pytest.mark.postgres
def test_a_run_on_a_worker_outlives_its_leader_and_the_next_one_logs_its_outcome(
    celery_up, postgres_schema_url
):
    group, _ = celery_up(database=postgres_schema_url, replicas=2)
    leader = wait_leader(group)
    follower = next(replica for replica in group if replica is not leader)
    create(follower, "remote_span", "ticker", parameters={"count": 40, "pause": 0.1})
    assert follower.client.post("/tasks/remote_span/run").status_code == 202
    run_id = follower.logs(task="remote_span")[0]["run_id"]
    output = f"/tasks/remote_span/runs/{run_id}/output"
    wait_until(lambda: follower.client.get(output).json()["lines"], timeout=20, what="the run going on")
    leader.process.kill()
    wait_leader([follower], timeout=10)
    record = wait_until(lambda: outcome(follower, "remote_span", run_id), timeout=30, what="the outcome")
    assert record["action"] == "success", record  # not a crash: the worker went on
    assert len(follower.client.get(output).json()["lines"]) == 40
    assert [r["action"] for r in follower.logs(task="remote_span")] == ["success", "run"]


def test_redis_works_as_the_broker_too(celery_up):
    if not broker_available(REDIS_BROKER_URL):
        pytest.skip(f"no Redis at {REDIS_BROKER_URL}")
    service, (worker,) = celery_up(broker=REDIS_BROKER_URL, worker_broker=REDIS_BROKER_URL)
    create(service, "remote_chatty", "chatty", parameters={"lines": 2})
    create(service, "remote_ticker", "ticker", parameters={"count": 100000, "pause": 0.05})
    assert service.client.post("/tasks/remote_chatty/run").status_code == 202
    assert service.client.post("/tasks/remote_ticker/run").status_code == 202
    assert wait_until(lambda: outcome(service, "remote_chatty"), timeout=20)["action"] == "success"
    run_id = service.logs(task="remote_ticker")[0]["run_id"]
    output = f"/tasks/remote_ticker/runs/{run_id}/output"
    wait_until(lambda: service.client.get(output).json()["lines"], timeout=20, what="the run going on")
    assert service.client.post("/tasks/remote_ticker/terminate").status_code == 202
    wait_until(
        lambda: f"Terminating {run_id} (15)" in worker.log(), timeout=10, what="the worker signalling it"
    )
    assert outcome(service, "remote_ticker")["action"] == "terminate"
