"""Task processes through the real server: a visible queue when every slot is taken, what a task
process starts ends with it, and a process that obeys SIGTERM is not reported as ignoring it."""

import signal

import psutil
import pytest

from tests.e2e.test_service import run_until_running
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow


def _descendants(service) -> list[psutil.Process]:
    return [p for p in service.children() if p.status() != psutil.STATUS_ZOMBIE]


def test_process_runs_beyond_the_limit_wait_in_a_visible_queue(start):
    service = start(env={"SCHEDULER_MAX_PROCESS_TASKS": "1"})
    run_until_running(service, "slow_process")
    response = service.client.post("/tasks/short_process/run", json={"seconds": 0.1})
    assert response.status_code == 202
    assert response.json()["detail"].startswith("queued: all 1 process slots are taken")
    assert service.task("short_process")["status"] == "queued"
    reasons = service.client.get("/tasks/short_process/explain").json()["reasons"]
    assert any("every process slot is taken (1)" in reason for reason in reasons)
    listed = {t["name"]: t for t in service.client.get("/tasks").json()["data"]}
    assert listed["short_process"]["status"] == "queued"
    # A slot frees: the queued run starts.
    assert service.client.post("/tasks/slow_process/terminate").status_code == 202
    service.wait_task("short_process", lambda t: t["status"] == "success")

    # What still waits at a stop is said, not silently dropped.
    run_until_running(service, "slow_process")
    assert service.client.post("/tasks/short_process/run").status_code == 202
    service.send(signal.SIGTERM)
    assert service.wait_exit() == 0
    assert "Task 'short_process' never started: it waited for a free process slot" in service.log()


def test_what_a_task_process_starts_ends_with_it(start):
    service = start()
    run_until_running(service, "spawner")
    # The task's process, its shell and the shell's sleep.
    generations = wait_until(lambda: len(d := _descendants(service)) >= 3 and d, what="three generations")
    assert service.client.post("/tasks/spawner/terminate").status_code == 202
    service.wait_task("spawner", lambda t: t["status"] == "terminate")
    gone, alive = psutil.wait_procs(generations, timeout=5)
    assert not alive, alive

    # A process that returns leaves nothing behind either.
    service.client.post("/tasks/leaves_a_child/run")
    service.wait_task("leaves_a_child", lambda t: t["status"] == "success")
    wait_until(lambda: not _descendants(service), what="the sleep it left ended")

    # Nor does a stop of the service.
    run_until_running(service, "spawner")
    generations = wait_until(lambda: len(d := _descendants(service)) >= 3 and d, what="three generations")
    service.send(signal.SIGTERM)
    assert service.wait_exit() == 0
    gone, alive = psutil.wait_procs(generations, timeout=5)
    assert not alive, alive


def test_a_process_that_obeys_sigterm_is_not_killed(start):
    service = start()
    for name in ("slow_process", "slow_to_exit"):
        run_until_running(service, name)
        assert service.client.post(f"/tasks/{name}/terminate").status_code == 202
        service.wait_task(name, lambda t: t["status"] == "terminate" and not t["is_running"])
    assert "ignored SIGTERM" not in service.log()
    # One that does ignore it is killed, and says so.
    run_until_running(service, "stubborn_process")
    assert service.client.post("/tasks/stubborn_process/terminate").status_code == 202
    service.wait_task("stubborn_process", lambda t: t["status"] == "terminate", timeout=15)
    assert "Task 'stubborn_process' ignored SIGTERM; killing its process" in service.log()
