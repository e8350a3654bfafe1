"""Faults, each through the real server: failing and hanging tasks, killed processes, a store
that cannot be opened or goes away while the scheduler runs."""

import json
import signal
import sqlite3
import uuid

import psutil
import pytest
import sqlalchemy as sa

from tests.e2e.test_service import run_until_running
from tests.utils.fixtures import POSTGRES_URL, postgres_available
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow


def test_a_failing_task_is_logged_with_its_traceback_and_the_scheduler_goes_on(start):
    service = start()
    service.wait_healthy()
    service.client.post("/tasks/failing/run")
    service.wait_task("failing", lambda t: t["status"] == "fail")
    failure = service.logs(task="failing", action="fail")[0]
    assert "ValueError: boom from the failing task" in failure["exc_text"]
    service.client.post("/tasks/quick/run")
    service.wait_task("quick", lambda t: t["status"] == "success")


def test_output_utf8_cannot_encode_is_kept_escaped_and_the_log_goes_on(start):
    service = start()
    service.client.post("/tasks/unencodable/run")
    service.wait_task("unencodable", lambda t: t["status"] == "fail")
    failure = service.logs(task="unencodable", action="fail")[0]
    assert "ValueError: bad \\ud800 error" in failure["exc_text"]
    output = service.client.get(f"/tasks/unencodable/runs/{failure['run_id']}/output").json()
    texts = [line["text"] for line in output["lines"]]
    assert "bad \\ud800 output" in texts
    assert any("bad \\udcff log" in text for text in texts)
    # Everything after it is stored too, and the service still says it is healthy.
    service.client.post("/tasks/quick/run")
    service.wait_task("quick", lambda t: t["status"] == "success")
    assert service.logs(task="quick", action="success")
    assert service.client.get("/health").json()["store"] == {
        "status": "ok",
        "pending": 0,
        "lost": 0,
        "rejected": 0,
        "waiting_seconds": 0.0,
    }
    service.send(signal.SIGTERM)
    assert service.wait_exit() == 0


@pytest.mark.parametrize("name", ["slow_async", "slow_thread", "slow_process"])
def test_a_task_past_its_timeout_is_terminated(start, name):
    service = start()
    service.wait_healthy()
    assert service.client.patch(f"/tasks/{name}", json={"timeout": 0.5}).status_code == 200
    service.client.post(f"/tasks/{name}/run")
    service.wait_task(name, lambda t: t["status"] == "terminate" and not t["is_running"])
    assert service.logs(task=name, action="terminate")
    assert not service.children() or name != "slow_process"


def test_a_task_process_killed_from_outside_or_exiting_hard_is_logged_failed(start):
    service = start()
    service.wait_healthy()
    run_until_running(service, "slow_process")
    (child,) = service.children()
    child.send_signal(signal.SIGKILL)
    service.wait_task("slow_process", lambda t: t["status"] == "fail" and not t["is_running"])
    assert "killed by SIGKILL" in service.logs(task="slow_process", action="fail")[0]["exc_text"]
    service.client.post("/tasks/exits_hard/run")
    service.wait_task("exits_hard", lambda t: t["status"] == "fail")
    assert "exited with code 3" in service.logs(task="exits_hard", action="fail")[0]["exc_text"]


@pytest.mark.parametrize(
    ("database", "says"),
    [
        ("nosuchdriver://somewhere/db", "Can't load plugin"),
        ("/proc/no/such/place/scheduler.db", "cannot open the database sqlite:////proc/no/such/place"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot open the database postgresql+psycopg://nobody@"),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_2(start, database, says):
    service = start(database=database, healthy=False)
    assert service.wait_exit(timeout=30) == 2
    output = service.log().strip()
    assert output.startswith("error: cannot open the database"), output
    assert says in output
    assert len(output.splitlines()) == 1 and "Traceback" not in output


def test_a_second_service_on_one_sqlite_file_is_refused_in_one_line(start):
    first = start()
    second = start(database=first.database, healthy=False)
    assert second.wait_exit(timeout=30) == 2
    output = second.log().strip()
    assert "is in use by another scheduler process; on SQLite only one may run" in output, output
    assert len(output.splitlines()) == 1 and "Traceback" not in output
    assert first.client.get("/health").status_code == 200


def assert_outage_and_recovery(service, begin_outage, end_outage):
    """Run tasks while the store is away: the scheduler goes on, health says degraded, and
    the records written meanwhile are all there once the store is back."""
    service.wait_healthy()
    service.client.post("/tasks/quick/run")
    service.wait_task("quick", lambda t: t["status"] == "success")
    before = len(service.logs(task="quick"))
    begin_outage()
    try:
        for runs in range(1, 4):
            service.client.post("/tasks/quick/run")
            wait_until(
                lambda runs=runs: service.client.get("/session").json()["store"]["pending"] >= 2 * runs,
                timeout=30,
                what="records kept in memory",
            )
        health = wait_until(
            lambda: (h := service.client.get("/health").json())["status"] == "degraded" and h,
            timeout=30,
            what="health degraded",
        )
        assert health["scheduler"] == "running", health
        assert service.client.get("/session").json()["store"]["last_error"]
    finally:
        end_outage()
    wait_until(lambda: service.client.get("/health").json()["status"] == "ok", timeout=30, what="store back")
    store = service.client.get("/session").json()["store"]
    assert store["pending"] == 0 and store["lost"] == 0
    assert len(service.logs(task="quick")) == before + 6


def role(service):
    return service.client.get("/session").json()["role"]


def assert_leader_outage_and_recovery(service, begin_outage, end_outage):
    """On PostgreSQL the service is a replica: without the database it cannot confirm its
    leadership, so it stops launching (another replica may be taking over) while it goes on
    answering; once the database is back it leads again and nothing was lost."""
    service.wait_healthy()
    wait_until(lambda: role(service) == "leader", what="leading")
    service.client.post("/tasks/quick/run")
    service.wait_task("quick", lambda t: t["status"] == "success")
    before = len(service.logs(task="quick"))
    begin_outage()
    try:
        wait_until(
            lambda: service.client.get("/session").json()["role"] != "leader", timeout=5, what="stepped down"
        )
        health = wait_until(
            lambda: (h := service.client.get("/health").json())["status"] == "degraded" and h,
            timeout=30,
            what="health degraded",
        )
        assert health["scheduler"] == "running", health
        assert service.client.get("/tasks").status_code == 200
        refused = service.client.post("/tasks/quick/run")
        assert refused.status_code == 503, refused.text
    finally:
        end_outage()
    wait_until(lambda: service.client.get("/health").json()["status"] == "ok", timeout=30, what="store back")
    wait_until(
        lambda: service.client.get("/session").json()["role"] == "leader", timeout=10, what="leading again"
    )
    assert service.client.post("/tasks/quick/run").status_code == 202
    wait_until(lambda: len(service.logs(task="quick")) == before + 2, what="the run after the outage")
    store = service.client.get("/session").json()["store"]
    assert store["pending"] == 0 and store["lost"] == 0


def test_sqlite_locked_by_another_process_degrades_then_recovers(start, tmp_path):
    service = start()
    holder = {}

    def lock():
        conn = sqlite3.connect(service.database, timeout=1, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        holder["conn"] = conn

    def unlock():
        if "conn" in holder:
            holder["conn"].execute("ROLLBACK")
            holder["conn"].close()

    assert_outage_and_recovery(service, lock, unlock)


def test_postgresql_refusing_the_service_degrades_then_recovers(start):
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    role = f"sched_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"CREATE SCHEMA {role} AUTHORIZATION {role}"))
    url = sa.engine.make_url(POSTGRES_URL).set(username=role, drivername="postgresql")
    database = f"{url.render_as_string(hide_password=False)}?options=-csearch_path%3D{role}"

    def refuse():
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER ROLE {role} NOLOGIN"))
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                {"r": role},
            )

    def allow():
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER ROLE {role} LOGIN"))

    try:
        service = start(database=database)
        assert_leader_outage_and_recovery(service, refuse, allow)
        service.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                {"r": role},
            )
            conn.execute(sa.text(f"DROP SCHEMA {role} CASCADE"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()


def test_tokens_never_reach_the_service_log(start):
    token = "rcp_never-in-the-log"
    entry = {
        "name": "ops",
        "role": "admin",
        "digest": "sha256:" + __import__("hashlib").sha256(token.encode()).hexdigest(),
    }
    service = start(env={"SCHEDULER_TOKENS": json.dumps([entry])})
    service.wait_healthy()
    service.client.get("/tasks", headers={"Authorization": f"Bearer {token}"})
    service.client.get("/tasks", headers={"Authorization": "Bearer rcp_wrong-token"})
    service.client.post("/auth/session", json={"token": token})
    service.send(signal.SIGTERM)
    assert service.wait_exit() == 0
    assert token not in service.log() and "rcp_wrong-token" not in service.log()
    assert psutil.pid_exists(service.process.pid) is False
