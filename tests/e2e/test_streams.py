"""Live streams with real clients against the real server: events and run output."""

import signal
import time

import httpx
import pytest

from tests.utils.streams import read_events
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow


def subscribers(service):
    return service.client.get("/session").json()["event_subscribers"]


def test_events_match_the_stored_log(start):
    service = start()
    with httpx.stream(
        "GET", f"{service.client.base_url}/events", params={"task": "quick"}, timeout=10
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        wait_until(lambda: subscribers(service) == 1, what="subscribed")
        service.client.post("/tasks/failing/run")  # filtered out
        service.client.post("/tasks/quick/run")
        run, success = read_events(stream, 2)
    assert (run["event"], success["event"]) == ("run", "success")
    assert success["data"]["run_id"] == run["data"]["run_id"]
    stored = {r["action"]: r for r in service.logs(task="quick")}
    for event in (run, success):
        # The same record, in the same shape (the stream's id is the event's, not the log's).
        record = stored[event["event"]]
        data = event["data"]
        assert (data.pop("event_id"), data.pop("kind")) == (int(event["id"]), event["event"])
        assert data == {key: value for key, value in record.items() if key != "id"}


def test_failures_carry_their_traceback_and_definition_changes_are_events(start):
    service = start()
    with httpx.stream("GET", f"{service.client.base_url}/events", timeout=10) as stream:
        wait_until(lambda: subscribers(service) == 1, what="subscribed")
        service.client.post("/tasks/failing/run")
        service.client.patch("/tasks/quick", json={"priority": 4})
        fail, edit = read_events(stream, 2, kinds={"fail", "edit"})
    assert "ValueError: boom from the failing task" in fail["data"]["exc_text"]
    assert edit["data"]["task_name"] == "quick" and edit["data"]["changes"]["priority"] == [0, 4]


def test_unknown_kinds_and_tasks_are_refused_not_silent(start):
    service = start()
    bogus = service.client.get("/events", params={"kind": "bogus"})
    assert bogus.status_code == 422 and bogus.json()["detail"][0]["loc"] == ["query", "kind", 0]
    nope = service.client.get("/events", params={"task": "nope"})
    assert nope.status_code == 404 and nope.json() == {"detail": "Task 'nope' not found"}


def test_events_are_delivered_when_a_thread_task_published_first(start):
    """The first event of the process comes from a thread task's own event loop."""
    service = start()
    assert service.client.post("/tasks/chatty_thread/run").status_code == 202
    service.wait_task("chatty_thread", lambda t: t["status"] == "success")
    with httpx.stream("GET", f"{service.client.base_url}/events", timeout=10) as stream:
        wait_until(lambda: subscribers(service) == 1, what="subscribed")
        service.client.post("/tasks/quick/run")
        (success,) = read_events(stream, 1, kinds={"success"})
    assert success["data"]["task_name"] == "quick"


def test_a_client_that_leaves_is_forgotten_and_one_that_returns_resumes(start):
    service = start()
    with httpx.stream(
        "GET", f"{service.client.base_url}/events", params={"task": "quick"}, timeout=10
    ) as stream:
        wait_until(lambda: subscribers(service) == 1, what="subscribed")
        service.client.post("/tasks/quick/run")
        last = read_events(stream, 2)[-1]["id"]
    wait_until(lambda: subscribers(service) == 0, what="the departed client forgotten")
    service.client.post("/tasks/quick/run")
    wait_until(lambda: len(service.logs(task="quick")) == 4, what="second run")
    headers = {"Last-Event-ID": last}
    with httpx.stream(
        "GET", f"{service.client.base_url}/events", params={"task": "quick"}, headers=headers, timeout=10
    ) as stream:
        missed = read_events(stream, 2)
    assert [e["event"] for e in missed] == ["run", "success"] and int(missed[0]["id"]) > int(last)


def test_a_stop_ends_open_streams_and_the_process_exits_cleanly(start):
    service = start()
    with httpx.stream("GET", f"{service.client.base_url}/events", timeout=10) as stream:
        wait_until(lambda: subscribers(service) == 1, what="subscribed")
        began = time.monotonic()
        service.send(signal.SIGTERM)
        assert service.wait_exit(timeout=10) == 0, service.log()
        assert time.monotonic() - began < 10
        list(stream.iter_lines())  # the stream has ended


def test_run_output_is_kept_per_run_for_every_execution_and_capped(start):
    service = start(env={"SCHEDULER_MAX_OUTPUT_BYTES": "60"})
    for name in ("chatty", "chatty_thread", "chatty_process"):
        service.client.post(f"/tasks/{name}/run", json={"lines": 1})
        service.wait_task(name, lambda t: t["status"] == "success")
        run_id = service.logs(task=name, action="success")[0]["run_id"]
        output = service.client.get(f"/tasks/{name}/runs/{run_id}/output").json()
        assert output["finished"] is True
        texts = [(line["stream"], line["text"]) for line in output["lines"]]
        assert texts == [
            ("stdout", "line 0"),
            ("log", "WARNING tests.chatty: a warning from the task"),
            ("log", "[output truncated: over 60 bytes]"),
        ], (name, texts)
    assert service.client.get("/tasks/chatty/runs/nope/output").status_code == 404


def test_run_output_is_followed_until_the_run_ends(start):
    service = start()
    service.client.patch("/tasks/ticker", json={"parameters": {"count": 4, "pause": 0.3}})
    service.client.post("/tasks/ticker/run")
    run_id = wait_until(
        lambda: (r := service.logs(task="ticker", action="run")) and r[0]["run_id"], what="run"
    )
    url = f"{service.client.base_url}/tasks/ticker/runs/{run_id}/output"
    with httpx.stream("GET", url, params={"follow": "true"}, timeout=10) as stream:
        events = read_events(stream, 5)
    assert [e["data"].get("text") for e in events[:4]] == [f"tick {i}" for i in range(4)]
    assert [e["data"]["seq"] for e in events[:4]] == [0, 1, 2, 3]
    assert events[4]["event"] == "end"
