"""Helpers of the route tests: read a task or its log through the API, wait for a status."""

import datetime

from tests.utils.waiting import async_wait_until

QUICK = "tests.support_tasks.probes:quick"


async def task_json(service, name):
    response = await service.client.get(f"/tasks/{name}")
    assert response.status_code == 200, response.text
    return response.json()


async def logs_of(service, name, **params):
    response = await service.client.get("/logs", params={"task": name, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def wait_status(service, name, status, timeout=10.0):
    async def reached():
        return (await task_json(service, name))["status"] == status

    await async_wait_until(reached, timeout=timeout, what=f"{name} status {status}")


def when(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


async def create(service, **fields):
    body = {"name": "made", "func": QUICK} | fields
    return await service.client.post("/tasks", json=body)
