"""The /tasks routes against the real app and a real, running scheduler."""

from control.conditions import parse_condition

import os
import signal

import pytest

from tests.utils.api import logs_of, task_json, wait_status
from tests.utils.waiting import async_wait_until


async def test_list_shows_every_task_with_its_fields(service):
    response = await service.client.get("/tasks")
    assert response.status_code == 200
    body = response.json()
    names = {task["name"] for task in body["data"]}
    assert {"quick", "failing", "slow_async", "slow_thread", "slow_process", "downstream"} <= names
    assert body["count"] == len(body["data"])
    downstream = next(task for task in body["data"] if task["name"] == "downstream")
    assert downstream["start_cond"] == "after task 'upstream'"
    assert downstream["execution"] == "async"
    assert set(downstream) >= {
        "description",
        "end_cond",
        "priority",
        "timeout",
        "disabled",
        "status",
        "is_running",
        "last_run",
        "last_success",
        "last_fail",
        "last_terminate",
        "last_crash",
    }


async def test_conditions_are_shown_as_text_that_parses_back(service):
    for task in (await service.client.get("/tasks")).json()["data"]:
        real = service.task(task["name"])
        session = service.app.session
        assert parse_condition(task["start_cond"], session=session) == real.start_cond
        assert parse_condition(task["end_cond"], session=session) == real.end_cond


async def test_unknown_task_is_404_with_a_message(service):
    for method, path in [
        ("GET", "/tasks/nope"),
        ("PATCH", "/tasks/nope"),
        ("POST", "/tasks/nope/run"),
        ("POST", "/tasks/nope/terminate"),
        ("POST", "/tasks/nope/disable"),
        ("POST", "/tasks/nope/enable"),
        ("GET", "/tasks/nope/logs"),
    ]:
        kwargs = {"json": {"priority": 1}} if method == "PATCH" else {}
        response = await service.client.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Task 'nope' not found"}


async def test_run_now_runs_the_task_and_logs_it(service):
    response = await service.client.post("/tasks/quick/run")
    assert response.status_code == 202
    assert response.json()["task"] == "quick"
    await wait_status(service, "quick", "success")
    records = await logs_of(service, "quick")
    assert [r["action"] for r in records] == ["success", "run"]
    assert records[0]["run_id"] == records[1]["run_id"] is not None
    assert records[0]["runtime"] >= 0
    task = await task_json(service, "quick")
    assert task["last_run"] is not None and task["last_success"] is not None


async def test_run_now_passes_parameters(service):
    response = await service.client.post("/tasks/quick/run", json={"n": 21})
    assert response.status_code == 202
    await wait_status(service, "quick", "success")
    assert service.app.session.returns[service.task("quick")] == 42


async def test_run_now_refuses_parameters_the_task_does_not_take(service):
    response = await service.client.post("/tasks/quick/run", json={"nope": 1})
    assert response.status_code == 422
    assert "takes no parameter 'nope'" in response.json()["detail"][0]["msg"]
    response = await service.client.post("/tasks/quick/run", json=[1, 2])
    assert response.status_code == 422
    assert service.task("quick").batches == []


async def test_run_now_while_running_conflicts(service):
    assert (await service.client.post("/tasks/slow_async/run")).status_code == 202
    await wait_status(service, "slow_async", "run")
    response = await service.client.post("/tasks/slow_async/run")
    assert response.status_code == 409
    assert "already running" in response.json()["detail"]


async def test_failure_is_logged_with_its_traceback(service):
    await service.client.post("/tasks/failing/run")
    await wait_status(service, "failing", "fail")
    failure = (await logs_of(service, "failing", action="fail"))[0]
    assert "Traceback" in failure["exc_text"]
    assert "ValueError: boom from the failing task" in failure["exc_text"]


async def test_pipeline_step_runs_after_its_upstream_succeeds(service):
    await service.client.post("/tasks/upstream/run")
    await wait_status(service, "downstream", "success")
    upstream, downstream = await task_json(service, "upstream"), await task_json(service, "downstream")
    assert downstream["last_run"] > upstream["last_success"]


async def test_terminate_when_not_running_conflicts(service):
    response = await service.client.post("/tasks/quick/terminate")
    assert response.status_code == 409
    assert response.json() == {"detail": "Task 'quick' is not running"}


async def test_terminate_each_execution(service):
    for name in ("slow_async", "slow_thread", "slow_process"):
        await service.client.post(f"/tasks/{name}/run")
        await wait_status(service, name, "run")
        response = await service.client.post(f"/tasks/{name}/terminate")
        assert response.status_code == 202, name
        await wait_status(service, name, "terminate")

        async def stopped(name=name):
            return not (await task_json(service, name))["is_running"]

        await async_wait_until(stopped, what=f"{name} stopped")
        assert (await logs_of(service, name, action="terminate"))[0]["run_id"]


async def test_terminated_process_is_gone(service):
    await service.client.post("/tasks/slow_process/run")
    await wait_status(service, "slow_process", "run")
    pid = service.task("slow_process")._run_stack[0].task.pid
    await service.client.post("/tasks/slow_process/terminate")
    await wait_status(service, "slow_process", "terminate")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the task process no longer exists


async def test_process_killed_from_outside_is_logged_as_failed(service):
    await service.client.post("/tasks/slow_process/run")
    await wait_status(service, "slow_process", "run")
    os.kill(service.task("slow_process")._run_stack[0].task.pid, signal.SIGKILL)
    await wait_status(service, "slow_process", "fail")
    failure = (await logs_of(service, "slow_process", action="fail"))[0]
    assert "killed by SIGKILL" in failure["exc_text"]


async def test_process_that_exits_hard_is_logged_as_failed(service):
    await service.client.post("/tasks/exits_hard/run")
    await wait_status(service, "exits_hard", "fail")
    failure = (await logs_of(service, "exits_hard", action="fail"))[0]
    assert "exited with code 3" in failure["exc_text"]


async def test_disable_stops_scheduled_starts_and_enable_resumes(service):
    response = await service.client.post("/tasks/downstream/disable")
    assert response.status_code == 200 and response.json()["disabled"] is True
    await service.client.post("/tasks/upstream/run")
    await wait_status(service, "upstream", "success")
    cycles = service.scheduler.n_cycles
    await async_wait_until(lambda: service.scheduler.n_cycles >= cycles + 3, what="three cycles")
    assert (await task_json(service, "downstream"))["last_run"] is None
    response = await service.client.post("/tasks/downstream/enable")
    assert response.status_code == 200 and response.json()["disabled"] is False
    await wait_status(service, "downstream", "success")


async def test_patch_changes_fields_and_condition_takes_effect(service):
    response = await service.client.patch(
        "/tasks/quick",
        json={"start_cond": "every 1 hour", "timeout": 30, "priority": 5, "description": "edited"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["start_cond"] == "every 1 hour"
    assert (body["timeout"], body["priority"], body["description"]) == (30.0, 5, "edited")
    # Never run, so "every 1 hour" is due at once.
    await wait_status(service, "quick", "success")


async def test_patch_with_a_bad_condition_is_422_and_changes_nothing(service):
    before = await task_json(service, "quick")
    response = await service.client.patch("/tasks/quick", json={"priority": 9, "start_cond": "every banana"})
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "start_cond"]
    assert "every banana" in error["msg"]
    assert await task_json(service, "quick") == before


async def test_patch_rejects_unknown_fields_nulls_and_bad_values(service):
    before = await task_json(service, "quick")
    for body in (
        {"colour": "red"},
        {"start_cond": None},
        {"execution": "somewhere"},
        {"timeout": -1},
        {"start_cond": ""},
        {"start_cond": "every 1 hour" * 200},
        {"end_cond": "(every 1 hour"},
    ):
        response = await service.client.patch("/tasks/quick", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"], body
    assert await task_json(service, "quick") == before


async def test_patch_timeout_null_returns_to_the_default(service):
    await service.client.patch("/tasks/quick", json={"timeout": 5})
    response = await service.client.patch("/tasks/quick", json={"timeout": None})
    assert response.status_code == 200 and response.json()["timeout"] is None


async def test_timeout_terminates_a_run(service):
    await service.client.patch("/tasks/slow_async", json={"timeout": 0.3})
    await service.client.post("/tasks/slow_async/run")
    await wait_status(service, "slow_async", "terminate")
    (record,) = await logs_of(service, "slow_async", action="terminate")
    assert 0.3 <= record["runtime"] < 5


async def test_list_follows_every_change(service):
    def listed(body, name):
        return next(task for task in body["data"] if task["name"] == name)

    first = (await service.client.get("/tasks")).json()
    assert listed(first, "quick")["status"] is None
    await service.client.post("/tasks/quick/run")
    await wait_status(service, "quick", "success")
    await service.client.patch("/tasks/quick", json={"end_cond": "every 2 hours", "priority": 3})
    await service.client.post("/tasks/quick/disable")
    await service.client.post("/tasks/slow_async/run")
    await wait_status(service, "slow_async", "run")
    body = (await service.client.get("/tasks")).json()
    quick = listed(body, "quick")
    assert (quick["status"], quick["end_cond"], quick["priority"], quick["disabled"]) == (
        "success",
        "every 2 hours",
        3,
        True,
    )
    assert quick["last_success"] is not None
    assert listed(body, "slow_async")["is_running"] is True
    assert body["data"] == [(await service.client.get(f"/tasks/{t['name']}")).json() for t in body["data"]]
