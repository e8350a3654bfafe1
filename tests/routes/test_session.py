"""The /session and /health routes, and the docs the app serves."""

from tests.utils.waiting import async_wait_until


async def test_session_shows_state_counts_and_config(service):
    body = (await service.client.get("/session")).json()
    assert body["state"] == "running"
    assert body["uptime_seconds"] >= 0
    assert body["task_count"] == len(service.app.session.tasks)
    assert body["running_count"] == 0
    assert body["config"]["database"].startswith("sqlite:///")
    assert body["config"]["task_packages"] == ["tests.support_tasks"]


async def test_health_is_ok_while_running(service):
    response = await service.client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["store"]["status"] == "ok"


async def test_shutdown_stops_the_scheduler_and_health_turns_503(service):
    await service.client.post("/tasks/slow_async/run")
    await async_wait_until(lambda: service.task("slow_async").is_alive(), what="slow_async running")
    response = await service.client.post("/session/shutdown")
    assert response.status_code == 202
    await async_wait_until(lambda: service.scheduler.state == "stopped", what="scheduler stopped")
    assert not service.task("slow_async").is_alive()
    assert service.task("slow_async").status == "terminate"
    response = await service.client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


async def test_openapi_documents_every_route(service):
    schema = (await service.client.get("/openapi.json")).json()
    assert {
        "/tasks",
        "/tasks/{name}",
        "/tasks/{name}/run",
        "/tasks/{name}/terminate",
        "/tasks/{name}/disable",
        "/tasks/{name}/enable",
        "/tasks/{name}/logs",
        "/logs",
        "/session",
        "/session/shutdown",
        "/health",
    } <= set(schema["paths"])
    assert (await service.client.get("/docs")).status_code == 200
