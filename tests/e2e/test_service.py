"""Black-box tests: the real ``python main.py`` on a loopback port, stopped with real signals."""

import signal
import socket
import time

import psutil
import pytest

pytestmark = pytest.mark.slow


def run_until_running(service, *names):
    for name in names:
        assert service.client.post(f"/tasks/{name}/run").status_code == 202
    for name in names:
        service.wait_task(name, lambda t: t["is_running"] and t["status"] == "run")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_both_cleanly_terminating_running_tasks(start, sig):
    service = start()
    service.wait_healthy()
    assert service.client.get("/docs").status_code == 200
    run_until_running(service, "slow_async", "slow_thread", "slow_process")
    children = service.children()
    assert children, "the process task should have a process"
    began = time.monotonic()
    service.send(sig)
    assert service.wait_exit(timeout=10) == 0, service.log()
    assert time.monotonic() - began < 10
    gone, alive = psutil.wait_procs(children, timeout=2)
    assert not alive, f"task processes left behind: {alive}"
    # The history says each run was terminated.
    again = start(database=service.database)
    again.wait_healthy()
    for name in ("slow_async", "slow_thread", "slow_process"):
        actions = [r["action"] for r in again.logs(task=name)]
        assert actions[:2] == ["terminate", "run"], (name, actions)
        assert again.task(name)["last_crash"] is None


def test_shutdown_route_stops_the_process(start):
    service = start()
    service.wait_healthy()
    run_until_running(service, "slow_process")
    assert service.client.post("/session/shutdown").status_code == 202
    assert service.wait_exit(timeout=10) == 0, service.log()


def test_sigkill_then_restart_keeps_history_and_marks_interrupted_runs_crashed(start):
    service = start()
    service.wait_healthy()
    service.client.post("/tasks/quick/run")
    service.wait_task("quick", lambda t: t["status"] == "success")
    run_until_running(service, "slow_async", "slow_process")
    before = {record["id"] for record in service.logs()}
    service.send(signal.SIGKILL)
    service.wait_exit()

    again = start(database=service.database)
    again.wait_healthy()
    after = again.logs()
    assert before <= {record["id"] for record in after}
    for name in ("slow_async", "slow_process"):
        task = again.task(name)
        assert task["status"] == "crash" and task["last_crash"] is not None
        assert not task["is_running"]
    quick = again.task("quick")
    assert quick["status"] == "success" and quick["last_success"] is not None


def test_every_run_cut_short_by_a_kill_gets_its_own_crash_record(start):
    service = start()
    assert service.client.patch("/tasks/nap", json={"overlap": "allow"}).status_code == 200
    for _ in range(3):
        assert service.client.post("/tasks/nap/run", json={"seconds": 60}).status_code == 202
    run_until_running(service, "slow_process")
    service.wait_task(
        "nap", lambda t: len([r for r in service.logs(task="nap") if r["action"] == "run"]) == 3
    )
    started = {r["run_id"] for r in service.logs(task="nap", action="run")}
    assert len(started) == 3 and None not in started, started
    service.send(signal.SIGKILL)
    service.wait_exit()

    again = start(database=service.database)
    crashed = again.logs(task="nap", action="crash")
    assert {r["run_id"] for r in crashed} == started
    assert all(r["start"] is not None and r["end"] >= r["start"] for r in crashed)
    assert len(again.logs(task="slow_process", action="crash")) == 1
    assert again.task("nap")["status"] == "crash"
    # Known from now on: another restart adds none.
    again.send(signal.SIGTERM)
    assert again.wait_exit() == 0
    third = start(database=service.database)
    assert len(third.logs(task="nap", action="crash")) == 3


def test_port_taken_exits_with_a_message_and_runs_nothing(start, tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        # The real example tasks: several are due at once when the scheduler starts.
        service = start(port=port, packages='["tasks"]', healthy=False)
        code = service.wait_exit(timeout=20)
    assert code == 3
    # The only thing it says: nothing started, so nothing claims it did.
    assert service.log().strip().splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port}: Address already in use; no task was started"
    ]
    check = start(database=service.database, packages='["tasks"]', env={"SCHEDULER_CYCLE_SLEEP": "30"})
    check.wait_healthy()
    # Records written by the check itself were created after it started; none is older.
    started = check.client.get("/session").json()["started_at"]
    assert all(r["created"] >= started for r in check.logs())


def test_scheduler_failure_stops_the_server_with_an_error_code(start):
    service = start(packages='["tests.support_tasks", "tests.support_tasks_broken"]')
    service.wait_healthy()
    service.client.post("/tasks/sabotage/run")
    code = service.wait_exit(timeout=15)
    assert code != 0
    assert "the scheduler loop was sabotaged" in service.log()


def test_thread_that_ignores_the_stop_does_not_hold_the_process(start):
    service = start()
    service.wait_healthy()
    run_until_running(service, "stubborn_thread")
    began = time.monotonic()
    service.send(signal.SIGTERM)
    assert service.wait_exit(timeout=12) == 0, service.log()
    assert time.monotonic() - began < 10
    assert "abandoning it" in service.log()


def test_database_that_cannot_be_opened_is_a_one_line_error(start):
    service = start(database="postgresql://nobody@127.0.0.1:1/none", healthy=False)
    assert service.wait_exit(timeout=20) == 2
    lines = service.log().strip().splitlines()
    assert lines[-1].startswith(
        "error: cannot open the database postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert "Traceback" not in service.log()
