"""The /tasks routes that change tasks: create, edit, delete, versions, overlap, explain."""

from control.stores.base import Version

import asyncio
import sys

import pytest

from tests.utils.api import QUICK, create, logs_of, task_json, wait_status, when
from tests.utils.fixtures import make_settings, start_service, stop_service
from tests.utils.waiting import async_wait_until


async def test_create_a_task_that_runs_an_allowed_function(service):
    response = await create(service, start_cond="every 1 hour", parameters={"n": 4}, description="made here")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["origin"], body["target"], body["execution"]) == ("runtime", QUICK, "async")
    await wait_status(service, "made", "success")
    assert service.app.session.returns[service.task("made")] == 8
    listed = {t["name"]: t for t in (await service.client.get("/tasks")).json()["data"]}
    assert listed["made"]["description"] == "made here"


async def test_create_is_refused_with_reasons(service):
    cases = [
        ({"func": "os:system"}, 422, "not in an allowed package"),
        ({"func": "tests.support_tasks.nothing_here:quick"}, 422, "cannot import"),
        ({"func": "tests.support_tasks.probes:group"}, 422, "not a function"),
        (
            {"func": "tests.support_tasks.probes:stubborn_thread", "execution": "async"},
            422,
            "block the event loop",
        ),
        ({"parameters": {"nope": 1}}, 422, "takes no parameter 'nope'"),
        ({"start_cond": "every banana"}, 422, "every banana"),
        ({"command": "echo hi", "func": None}, 422, "command tasks are disabled"),
        ({"command": "echo hi"}, 422, "exactly one of func or command"),
        ({"colour": "red"}, 422, "colour"),
        ({"name": "a/b"}, 422, "name"),
        ({"name": "quick"}, 409, "already exists"),
    ]
    for fields, status, says in cases:
        response = await create(service, **fields)
        assert response.status_code == status, (fields, response.text)
        assert says in response.text, (fields, response.text)
    assert "made" not in service.app.session


async def test_a_target_walking_through_an_imported_module_is_refused_everywhere(tmp_path):
    """tasks.pipeline imports os; its attribute path once reached os.system."""
    settings = make_settings(tmp_path, task_func_packages=["tasks", "tests.support_tasks"])
    env, serving = await start_service(settings)
    evil = {"name": "evil", "func": "tasks.pipeline:os.system", "parameters": {"command": "touch pwned"}}
    try:
        created = await env.client.post("/tasks", json=evil)
        assert created.status_code == 422, created.text
        assert created.json()["detail"][0]["loc"] == ["body", "func"]
        assert "no dotted path" in created.json()["detail"][0]["msg"]
        imported = await env.client.post("/definitions/import", json={"runtime_tasks": [evil]})
        assert imported.status_code == 422
        assert "no dotted path" in imported.json()["changes"][0]["error"]
        # A version whose stored definition names such a target cannot be restored either.
        fine = {"name": "evil", "func": "tests.support_tasks.probes:quick"}
        assert (await env.client.post("/tasks", json=fine)).status_code == 201
        assert (await env.client.delete("/tasks/evil")).status_code == 204
        store = env.stores.definitions
        tampered = Version(
            task_name="evil",
            actor="open",
            client=None,
            action="edit",
            changes={},
            reason=None,
            origin="runtime",
            definition={**fine, "func": "tests.support_tasks.lures:os.system"},
        )
        version = await asyncio.to_thread(store.save, None, tampered, name="evil")
        restored = await env.client.post(f"/tasks/evil/versions/{version.id}/restore")
        assert restored.status_code == 422, restored.text
        assert "evil" not in env.app.session
    finally:
        await stop_service(env, serving)
    assert not (tmp_path / "pwned").exists()


async def test_command_tasks_when_enabled(tmp_path):
    env, serving = await start_service(make_settings(tmp_path, command_tasks=True))
    try:
        command = [sys.executable, "-c", "print('hello')"]
        response = await env.client.post("/tasks", json={"name": "cmd", "command": command})
        assert response.status_code == 201, response.text
        assert response.json()["execution"] == "process"
        await env.client.post("/tasks/cmd/run")
        await async_wait_until(lambda: env.task("cmd").status == "success", what="command ran")
    finally:
        await stop_service(env, serving)


async def test_edits_of_a_code_task_are_overrides_that_can_be_cleared(service):
    response = await service.client.patch("/tasks/quick", json={"start_cond": "every 2 hours", "priority": 3})
    assert response.json()["overridden"] == ["priority", "start_cond"]
    assert response.json()["origin"] == "code"
    cleared = await service.client.delete("/tasks/quick/overrides")
    assert cleared.status_code == 200
    body = cleared.json()
    assert (body["overridden"], body["start_cond"], body["priority"]) == ([], "false", 0)
    assert (await service.client.delete("/tasks/nope/overrides")).status_code == 404


async def test_a_field_set_back_to_its_code_value_is_no_longer_overridden(service):
    c = service.client
    assert (await c.post("/tasks/quick/disable")).json()["overridden"] == ["disabled"]
    assert (await c.post("/tasks/quick/enable")).json()["overridden"] == []
    edited = await c.patch("/tasks/quick", json={"priority": 3, "start_cond": "every 2 hours"})
    assert edited.json()["overridden"] == ["priority", "start_cond"]
    back = await c.patch("/tasks/quick", json={"priority": 0})
    assert back.json()["overridden"] == ["start_cond"]
    edits = (await c.get("/definitions")).json()["code_task_edits"]
    assert edits == {"quick": {"start_cond": "every 2 hours"}}


async def test_delete_a_runtime_task_but_never_a_code_task(service):
    assert (await create(service, func="tests.support_tasks.probes:slow_async")).status_code == 201
    await service.client.post("/tasks/made/run")
    await wait_status(service, "made", "run")
    refused = await service.client.delete("/tasks/made")
    assert refused.status_code == 409 and "terminate=true" in refused.json()["detail"]
    assert (await service.client.delete("/tasks/made", params={"terminate": "true"})).status_code == 204
    assert (await service.client.get("/tasks/made")).status_code == 404
    assert await logs_of(service, "made", action="terminate")  # its history stays
    code = await service.client.delete("/tasks/quick")
    assert code.status_code == 409 and "defined in code" in code.json()["detail"]


async def test_every_change_is_a_version_that_can_be_restored(service):
    await create(service, start_cond="every 1 hour")
    await service.client.patch("/tasks/made", json={"priority": 7, "start_cond": "every 2 hours"})
    await service.client.post("/tasks/made/disable", json={"reason": "maintenance window"})
    await service.client.delete("/tasks/made")
    versions = (await service.client.get("/tasks/made/versions")).json()["data"]
    assert [v["action"] for v in versions] == ["delete", "disable", "edit", "create"]
    edit = versions[2]
    assert edit["changes"]["priority"] == [0, 7]
    assert edit["changes"]["start_cond"] == ["every 1 hour", "every 2 hours"]
    assert (edit["actor"], edit["client"]) == ("open", "127.0.0.1")
    assert versions[1]["reason"] == "maintenance window"
    # The deleted task comes back as it was after the edit.
    restored = await service.client.post(f"/tasks/made/versions/{edit['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert (restored.json()["priority"], restored.json()["disabled"]) == (7, False)
    deletion = await service.client.post(f"/tasks/made/versions/{versions[0]['id']}/restore")
    assert deletion.status_code == 422
    assert (await service.client.post("/tasks/made/versions/99999/restore")).status_code == 404


async def test_next_run_follows_the_last_run(service):
    assert (await task_json(service, "quick"))["next_run"] is None  # "false" never holds
    await service.client.patch("/tasks/quick", json={"start_cond": "every 1 hour"})
    await wait_status(service, "quick", "success")
    task = await task_json(service, "quick")
    assert when(task["next_run"]) == pytest.approx(when(task["last_run"]) + 3600, abs=0.01)
    await service.client.post("/tasks/quick/disable")
    assert (await task_json(service, "quick"))["next_run"] is None


async def test_explain_shows_each_part_and_the_reasons(service):
    condition = "(every 1 hour | daily) & time of day between 00:00 and 00:01"
    await service.client.patch("/tasks/quick", json={"start_cond": condition})
    explained = (await service.client.get("/tasks/quick/explain")).json()
    tree = explained["start_cond"]
    assert tree["type"] == "All" and [c["type"] for c in tree["children"]] == ["Any", "IsPeriod"]
    assert [c["value"] for c in tree["children"][0]["children"]] == [True, True]  # never ran
    assert tree["value"] is tree["children"][1]["value"]
    await service.client.post("/tasks/quick/disable")
    explained = (await service.client.get("/tasks/quick/explain")).json()
    assert explained["would_start"] is False and "the task is disabled" in explained["reasons"]
    await service.client.post("/tasks/slow_async/run")
    await wait_status(service, "slow_async", "run")
    running = (await service.client.get("/tasks/slow_async/explain")).json()
    assert running["running"] and any("already running" in r for r in running["reasons"])


async def runs_of(service, name):
    return [r for r in await logs_of(service, name) if r["action"] == "run"]


async def test_overlap_allow_runs_side_by_side(service):
    await service.client.patch("/tasks/slow_async", json={"overlap": "allow"})
    for _ in range(2):
        assert (await service.client.post("/tasks/slow_async/run")).status_code == 202
        await async_wait_until(lambda: service.task("slow_async").status == "run", what="running")
    await async_wait_until(lambda: service.task("slow_async").n_alive == 2, what="two runs at once")


async def test_overlap_buffer_one_keeps_one_start_for_the_end(service):
    await service.client.patch("/tasks/nap", json={"overlap": "buffer_one", "parameters": {"seconds": 0.5}})
    assert (await service.client.post("/tasks/nap/run")).status_code == 202
    await async_wait_until(lambda: service.task("nap").is_alive(), what="first run")
    queued = await service.client.post("/tasks/nap/run")
    assert queued.status_code == 202 and "queued" in queued.json()["detail"]
    assert (await service.client.post("/tasks/nap/run")).status_code == 409  # one waits already
    await async_wait_until(
        lambda: not service.task("nap").is_alive()
        and service.task("nap").status == "success"
        and not service.task("nap").batches,
        what="both runs done",
    )

    async def two_runs():
        return len(await runs_of(service, "nap")) == 2

    await async_wait_until(two_runs, what="the buffered run")
    first, second = sorted(await runs_of(service, "nap"), key=lambda r: r["created"])
    success = [r for r in await logs_of(service, "nap") if r["action"] == "success"]
    assert min(when(s["created"]) for s in success) <= when(second["created"])  # one after the other


async def test_overlap_replace_terminates_the_running_run(service):
    await service.client.patch("/tasks/slow_async", json={"overlap": "replace"})
    await service.client.post("/tasks/slow_async/run")
    await wait_status(service, "slow_async", "run")
    replaced = await service.client.post("/tasks/slow_async/run")
    assert replaced.status_code == 202
    # The old run's end is logged before the new one starts.
    assert [r["action"] for r in await logs_of(service, "slow_async")][:3] == ["run", "terminate", "run"]
    await async_wait_until(lambda: service.task("slow_async").n_alive == 1, what="the new run")


async def test_overlap_applies_to_scheduled_starts_too(service):
    await service.client.patch(
        "/tasks/slow_async", json={"overlap": "replace", "start_cond": "every 1 second"}
    )

    async def replaced_by_schedule():
        actions = [r["action"] for r in reversed(await logs_of(service, "slow_async"))]
        return actions[:3] == ["run", "terminate", "run"]

    await async_wait_until(replaced_by_schedule, what="a scheduled start replacing the run")
    terminated = [r for r in await logs_of(service, "slow_async") if r["action"] == "terminate"]
    assert terminated[-1]["message"] is not None and service.task("slow_async").is_alive()


async def test_concurrent_edits_end_as_the_last_version_says(service):
    async def edit(priority):
        return await service.client.patch(
            "/tasks/quick", json={"priority": priority, "description": f"p{priority}"}
        )

    responses = await asyncio.gather(*(edit(p) for p in range(1, 21)))
    assert all(r.status_code == 200 for r in responses)
    versions = (await service.client.get("/tasks/quick/versions", params={"limit": 100})).json()["data"]
    assert len(versions) == 20
    last = versions[0]["definition"]
    task = await task_json(service, "quick")
    assert (task["priority"], task["description"]) == (last["priority"], last["description"])
    assert (await service.client.get("/definitions")).json()["code_task_edits"]["quick"] == last
