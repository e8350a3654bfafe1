"""The /logs routes: filters, paging and input errors, over records Rocketry really wrote."""

import time

from tests.utils.api import wait_status
from tests.utils.waiting import async_wait_until


async def run_and_wait(service, name, status):
    await service.client.post(f"/tasks/{name}/run")
    await wait_status(service, name, status)


async def test_filters_by_task_and_action(service):
    await run_and_wait(service, "quick", "success")
    await run_and_wait(service, "failing", "fail")
    response = await service.client.get("/logs", params=[("task", "quick"), ("task", "failing")])
    names = {record["task_name"] for record in response.json()["data"]}
    assert names == {"quick", "failing"}
    response = await service.client.get("/logs", params={"action": "fail"})
    assert {r["action"] for r in response.json()["data"]} == {"fail"}
    response = await service.client.get("/logs", params=[("action", "fail"), ("action", "success")])
    assert {r["action"] for r in response.json()["data"]} == {"fail", "success"}


async def test_a_runs_records_by_its_id_alone(service):
    await run_and_wait(service, "quick", "success")
    await run_and_wait(service, "quick", "success")
    runs = [r["run_id"] for r in (await service.client.get("/logs", params={"action": "run"})).json()["data"]]
    first, second = runs[-1], runs[0]
    data = (await service.client.get("/logs", params={"run_id": first})).json()["data"]
    assert [(r["action"], r["run_id"], r["task_name"]) for r in data] == [
        ("success", first, "quick"),
        ("run", first, "quick"),
    ]
    both = (await service.client.get("/logs", params=[("run_id", first), ("run_id", second)])).json()["data"]
    assert len(both) == 4
    assert (await service.client.get("/logs", params={"run_id": "nope"})).json()["data"] == []
    too_long = await service.client.get("/logs", params={"run_id": "x" * 65})
    assert too_long.status_code == 422


async def test_task_logs_route_is_limited_to_the_task(service):
    await run_and_wait(service, "quick", "success")
    await run_and_wait(service, "failing", "fail")
    data = (await service.client.get("/tasks/quick/logs")).json()["data"]
    assert data and {r["task_name"] for r in data} == {"quick"}


async def test_since_and_until_take_iso_and_epoch(service):
    await run_and_wait(service, "quick", "success")
    middle = time.time()
    await run_and_wait(service, "failing", "fail")
    after = (await service.client.get("/logs", params={"since": str(middle)})).json()["data"]
    assert {r["task_name"] for r in after} == {"failing"}
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle)) + f".{int(middle % 1 * 1e6):06d}Z"
    before = (await service.client.get("/logs", params={"until": iso})).json()["data"]
    assert "failing" not in {r["task_name"] for r in before}
    assert "quick" in {r["task_name"] for r in before}


async def test_pages_run_newest_first_without_gaps_or_repeats(service):
    for runs in range(1, 5):
        await service.client.post("/tasks/quick/run")

        async def finished(runs=runs):
            params = {"task": "quick", "action": "success"}
            return len((await service.client.get("/logs", params=params)).json()["data"]) == runs

        await async_wait_until(finished, what=f"run {runs} of quick")
    seen, cursor = [], None
    while True:
        params = {"task": "quick", "limit": 3} | ({"cursor": cursor} if cursor else {})
        body = (await service.client.get("/logs", params=params)).json()
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 8
    assert len({r["id"] for r in seen}) == 8
    created = [r["created"] for r in seen]
    assert created == sorted(created, reverse=True)


async def test_bad_log_queries_are_422(service):
    for params in (
        {"action": "exploded"},
        {"limit": 0},
        {"limit": 1001},
        {"since": "yesterday"},
        {"cursor": "!!!"},
        {"since": "2030-01-01", "until": "2020-01-01"},
        {"unknown": "1"},
    ):
        response = await service.client.get("/logs", params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"], params
