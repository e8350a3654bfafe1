"""The scheduler loop's own promises, on a real session running the test tasks."""

from control.events import EventHub
from control.stores.sql import open_stores

import asyncio
import sqlite3
import time

import pytest

from scheduler import create_scheduler
from tests.utils.fixtures import make_settings, start_service, stop_service
from tests.utils.waiting import async_wait_until


async def test_run_now_does_not_wait_for_the_next_cycle(tmp_path):
    env, serving = await start_service(make_settings(tmp_path, cycle_sleep=30))
    try:
        # The loop has made its first pass and sleeps until something wakes it.
        await async_wait_until(lambda: env.scheduler.n_cycles >= 1, what="the first pass")
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
    record = await async_wait_until(
        lambda: service.stores.logs.filter_by(task_name="short_process", action="success").last(),
        what="success record of the removed task",
    )
    assert record.task_name == "short_process" and "short_process" not in service.app.session


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
    settings = make_settings(tmp_path)
    stores = open_stores(settings.database_url)
    scheduler = create_scheduler(settings, stores, events=EventHub()).session.scheduler
    # Another connection holds the database, so start-up waits in restoring the tasks' state.
    other = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    serving = asyncio.create_task(scheduler.serve())
    try:
        await async_wait_until(lambda: scheduler.state == "starting", what="start-up under way")
        scheduler.request_stop()
        other.execute("ROLLBACK")
        await asyncio.wait_for(serving, timeout=15)
        # It stopped without running a single pass (Rocketry's serve() would forget the stop).
        assert (scheduler.state, scheduler.n_cycles, scheduler.ready.is_set()) == ("stopped", 0, True)
    finally:
        other.close()
        stores.close()


@pytest.fixture
async def slow_cycles(tmp_path):
    """A service whose scheduler would sleep 30 s between cycles if nothing woke it."""
    env, serving = await start_service(make_settings(tmp_path, cycle_sleep=30))
    try:
        yield env
    finally:
        await stop_service(env, serving)


async def test_dependency_finishing_wakes_its_dependents(slow_cycles):
    env = slow_cycles
    await env.client.post("/tasks/upstream/run")
    await async_wait_until(
        lambda: env.task("downstream").status == "success",
        timeout=5,
        what="downstream to start when upstream succeeded, not 30 s later",
    )
    assert env.task("downstream")._last_run >= env.task("upstream")._last_success


async def test_edit_and_enable_take_effect_at_once(slow_cycles):
    env = slow_cycles
    await env.client.post("/tasks/quick/disable")
    cycles = env.scheduler.n_cycles
    response = await env.client.patch("/tasks/quick", json={"start_cond": "every 1 hour"})
    assert response.status_code == 200
    # The edit wakes the scheduler, which checks the task at once and, disabled, skips it.
    await async_wait_until(lambda: env.scheduler.n_cycles > cycles, timeout=5, what="a cycle after the edit")
    assert env.task("quick").status is None
    await env.client.post("/tasks/quick/enable")
    await async_wait_until(
        lambda: env.task("quick").status == "success", timeout=5, what="quick after enable"
    )


async def test_idle_tasks_are_not_checked_again_until_they_can_change(service):
    await service.client.patch("/tasks/quick", json={"start_cond": "every 1 hour"})
    await async_wait_until(lambda: service.task("quick").status == "success", what="first run")
    # Its own records make it due once more; that check plans the next for an hour later.
    planner = service.scheduler.planner
    await async_wait_until(lambda: (planner.due_at("quick") or 0) > time.time() + 60, what="quick planned")
    assert planner.due_at("quick") == pytest.approx(service.task("quick")._last_run + 3600, abs=1e-3)
    checks = service.scheduler.n_checks
    cycles = service.scheduler.n_cycles
    for _ in range(3):
        service.scheduler.wake()
        await async_wait_until(lambda c=cycles: service.scheduler.n_cycles > c, what="a cycle")
        cycles = service.scheduler.n_cycles
    # Nothing was due (every other test task is on demand): cycles ran, nothing was checked.
    assert service.scheduler.n_checks == checks


async def test_conditions_that_cannot_be_foreseen_are_polled(service):
    session = service.app.session
    await service.client.patch("/tasks/quick", json={"start_cond": "env 'go'"})
    await async_wait_until(lambda: "quick" in service.scheduler.planner.polled, what="quick checked")
    assert service.task("quick").status is None
    session.parameters["env"] = "go"  # no event announces this: only polling sees it
    await async_wait_until(lambda: service.task("quick").status == "success", what="quick once env is 'go'")
