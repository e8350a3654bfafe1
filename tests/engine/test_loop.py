"""The scheduler loop's own promises, on a real session running the test tasks."""

import asyncio

from tests.utils.fixtures import make_settings, start_service, stop_service
from tests.utils.waiting import async_wait_until


async def test_run_now_does_not_wait_for_the_next_cycle(tmp_path):
    env, serving = await start_service(make_settings(tmp_path, cycle_sleep=30))
    try:
        # Let the loop go to sleep for its 30 s cycle first.
        await asyncio.sleep(0)
        assert (await env.client.post("/tasks/quick/run")).status_code == 202
        await async_wait_until(
            lambda: env.task("quick").status == "success",
            timeout=5,
            what="quick to run well before the 30 s cycle ends",
        )
    finally:
        await stop_service(env, serving)


async def test_process_ignoring_sigterm_is_killed_and_logged(service):
    await service.client.post("/tasks/stubborn_process/run")
    await async_wait_until(lambda: service.task("stubborn_process").status == "run", what="start")
    await service.client.post("/tasks/stubborn_process/terminate")
    await async_wait_until(lambda: service.task("stubborn_process").status == "terminate", what="terminate")
    run_stack = service.task("stubborn_process")._run_stack
    assert all(not run.is_alive() for run in run_stack)


async def test_records_of_a_removed_task_are_still_stored(service):
    await service.client.post("/tasks/short_process/run", json={"seconds": 1.0})
    task = service.task("short_process")
    await async_wait_until(lambda: task.status == "run", what="start")
    service.app.session.remove_task(task)
    await async_wait_until(
        lambda: service.store.filter_by(task_name="short_process", action="success").last(),
        what="success record of the removed task",
    )


async def test_stop_terminates_every_running_task(service):
    for name in ("slow_async", "slow_thread", "slow_process"):
        await service.client.post(f"/tasks/{name}/run")
    await async_wait_until(
        lambda: all(service.task(n).status == "run" for n in ("slow_async", "slow_thread", "slow_process")),
        what="all running",
    )
    service.scheduler.request_stop()
    await async_wait_until(lambda: service.scheduler.state == "stopped", what="stopped")
    for name in ("slow_async", "slow_thread", "slow_process"):
        assert service.task(name).status == "terminate", name
        assert not service.task(name).is_alive(), name
    assert service.scheduler.abandoned == []


async def test_a_stop_asked_during_start_up_is_kept(tmp_path):
    env, serving = await start_service(make_settings(tmp_path))
    await stop_service(env, serving)
    # A fresh scheduler asked to stop before serve() starts must not run on.
    env2, serving2 = await start_service(make_settings(tmp_path))
    try:
        env2.scheduler.request_stop()
        await asyncio.wait_for(serving2, timeout=10)
        assert env2.scheduler.state == "stopped"
    finally:
        await env2.client.aclose()
        env2.store.close()
