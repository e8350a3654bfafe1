"""The /session/parameters routes: values set through the API reach the tasks that ask for them."""

from tests.utils.api import wait_status


async def test_session_parameters_reach_the_tasks_that_ask_for_them(service):
    assert (await service.client.put("/session/parameters/n", json={"value": 21})).status_code == 200
    listed = (await service.client.get("/session/parameters")).json()
    assert listed == {"data": [{"name": "n", "value": 21}], "count": 1}
    await service.client.post("/tasks/quick/run")
    await wait_status(service, "quick", "success")
    assert service.app.session.returns[service.task("quick")] == 42
    assert (await service.client.delete("/session/parameters/n")).status_code == 204
    assert (await service.client.get("/session/parameters/n")).status_code == 404
    assert (await service.client.delete("/session/parameters/n")).status_code == 404
    assert (
        await service.client.put("/session/parameters/not-an-identifier", json={"value": 1})
    ).status_code == 422
    assert (await service.client.put("/session/parameters/x", json={"wrong": 1})).status_code == 422
