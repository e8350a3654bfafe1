"""One admission rule: for random task states, what ``explain`` says, what a check of the loop
does, and how a run request is answered must agree."""

from control.auth import TokenRegistry
from control.conditions import parse_condition
from control.events import EventHub
from control.services.assemble import build_services
from control.stores.sql import open_stores

import contextlib

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from scheduler import create_scheduler
from tests.utils.fixtures import make_settings

STATES = st.fixed_dictionaries(
    {
        "overlap": st.sampled_from(["skip", "allow", "buffer_one", "replace"]),
        "running": st.booleans(),
        "requested": st.booleans(),
        "disabled": st.booleans(),
        "condition": st.sampled_from(["true", "false"]),
        "on_hold": st.booleans(),
    }
)
VERDICTS = {"start": "ran", "replace": "ran", "buffer": "running"}


@contextlib.asynccontextmanager
async def scheduler_not_serving(tmp_path):
    """The real app and session, with a scheduler bound to this loop but not cycling: only
    the test checks tasks, so no cycle of its own interferes."""
    settings = make_settings(tmp_path)
    stores = open_stores(settings.database_url)
    events = EventHub()
    app = create_scheduler(settings, stores, events=events)
    scheduler = app.session.scheduler
    services = build_services(settings, app, stores=stores, events=events)
    api = create_app(services, settings=settings, tokens=TokenRegistry([]))
    scheduler.bind_loop()
    scheduler.state = "running"
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://127.0.0.1:8000")
    try:
        yield app.session, scheduler, client
    finally:
        await client.aclose()
        for task in app.session.tasks:
            await scheduler.terminate_now(task, "test over")
        stores.close()


async def arrange(session, scheduler, state) -> None:
    task = session["nap"]
    await scheduler.terminate_now(task, "next example")
    task._clean_run_stack()
    task.batches.clear()
    scheduler.on_hold = False
    scheduler.set_overlap(task, state["overlap"])
    task.disabled = False
    task.start_cond = parse_condition("true", session=session)
    if state["running"]:
        task.run({"seconds": 30})
        await scheduler.start_now(task)
        assert task.is_alive()
    task.disabled = state["disabled"]
    task.start_cond = parse_condition(state["condition"], session=session)
    if state["requested"]:
        task.run({"seconds": 30})
    scheduler.on_hold = state["on_hold"]


def runs(task) -> int:
    return sum(run.is_alive() for run in task._run_stack)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=STATES)
async def test_explain_the_loop_and_run_requests_agree(tmp_path, state):
    async with scheduler_not_serving(tmp_path) as (session, scheduler, client):
        task = session["nap"]

        # explain against what a check of the loop does.
        await arrange(session, scheduler, state)
        explained = (await client.get("/tasks/nap/explain")).json()
        before = runs(task)
        verdict = await scheduler._check(task)  # the loop's own check
        started = runs(task) > before or (explained["decision"] == "replace" and runs(task) == 1)
        assert explained["would_start"] == started, (state, explained, verdict)
        assert VERDICTS.get(explained["decision"], explained["decision"]) == verdict, (state, explained)
        assert explained["reasons"], state
        if explained["decision"] == "buffer":
            assert task.batches, "a start waits for the run to end"

        # A run request: refused (409) exactly when the rule refuses it; taken, it starts
        # now exactly when explain, asked with the request pending, says it would.
        await arrange(session, scheduler, state | {"requested": False})
        task.run()
        predicted = (await client.get("/tasks/nap/explain")).json()
        task.batches.clear()
        refusal = scheduler.refusal(task)
        before = runs(task)
        answer = await client.post("/tasks/nap/run", json={"seconds": 30})
        if refusal is not None:
            assert answer.status_code == 409 and answer.json()["detail"] == refusal, state
            assert state["running"] and state["overlap"] == "skip"
        else:
            assert answer.status_code == 202, (state, answer.text)
            started = runs(task) > before or (predicted["decision"] == "replace" and runs(task) == 1)
            assert predicted["would_start"] == started, (state, predicted)
