"""Live streams with real clients against the real server: events, run output, the batch WebSocket."""

from control.auth import digest

import asyncio
import json
import signal
import time

import httpx
import pytest
import websockets

from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow


def read_events(response, count, *, kinds=None):
    """The next ``count`` events of a Server-Sent Events response (of ``kinds`` if given)."""
    events, current = [], {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if current:
                if kinds is None or current["event"] in kinds:
                    events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        field, _, value = line.partition(": ")
        current[field] = json.loads(value) if field == "data" else value
    return events


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


BATCH = {"SCHEDULER_BATCH_EXAMPLE": "true", "SCHEDULER_BATCH_EVERY": "0.3", "SCHEDULER_BATCH_SIZE": "2"}


async def batch_exchange(port, messages, *, headers=None):
    async with websockets.connect(f"ws://127.0.0.1:{port}/batch", additional_headers=headers) as socket:
        for message in messages:
            await socket.send(json.dumps(message))
        return [json.loads(await socket.recv()) for _ in messages]


def test_batch_results_come_back_to_each_sender_in_order(start):
    service = start(env=BATCH)

    async def two_clients():
        return await asyncio.gather(
            batch_exchange(service.port, [{"id": i, "text": f"a {i}"} for i in range(5)]),
            batch_exchange(service.port, [{"id": i, "text": f"b b {i}"} for i in range(5)] + [{"id": 9}]),
        )

    first, second = asyncio.run(two_clients())
    assert [r["id"] for r in first] == [0, 1, 2, 3, 4]
    assert [r["result"]["upper"] for r in first] == [f"A {i}" for i in range(5)]
    assert [r["result"]["words"] for r in second[:5]] == [3] * 5
    assert second[5] == {"id": 9, "error": 'a request is a JSON object with a "text" string'}
    runs = service.logs(task="batch_requests", action="success")
    assert len(runs) >= 6  # at most 2 per batch: 11 requests took several batches


def test_a_full_queue_answers_at_once_and_a_departed_client_is_dropped(start):
    service = start(env={**BATCH, "SCHEDULER_BATCH_EVERY": "3", "SCHEDULER_BATCH_QUEUE_LIMIT": "2"})

    async def overflow_then_leave():
        async with websockets.connect(f"ws://127.0.0.1:{service.port}/batch") as socket:
            for i in range(3):
                await socket.send(json.dumps({"id": i, "text": "x"}))
            return json.loads(await socket.recv())  # the third is refused before the first two are done

    # The answers keep the order of the requests: the refusal waits behind the two queued ones.
    answer = asyncio.run(asyncio.wait_for(overflow_then_leave(), 10))
    assert answer["id"] == 0 and "result" in answer
    # A client that leaves with requests waiting: they are dropped, and nothing fails.

    async def leave_with_requests_waiting():
        async with websockets.connect(f"ws://127.0.0.1:{service.port}/batch") as socket:
            await socket.send(json.dumps({"id": 1, "text": "never answered"}))

    asyncio.run(leave_with_requests_waiting())
    wait_until(
        lambda: service.logs(task="batch_requests", action="inaction"),
        timeout=15,
        what="a batch that found nothing waiting",
    )
    assert "Traceback" not in service.log()
    assert service.client.get("/health").json()["status"] == "ok"


def test_the_batch_socket_checks_tokens(start):
    token = "rcp_batch-operator"
    entries = [
        {"name": "ops", "role": "operate", "digest": digest(token)},
        {"name": "viewer", "role": "read", "digest": digest("rcp_batch-reader")},
    ]
    service = start(env={**BATCH, "SCHEDULER_TOKENS": json.dumps(entries)})

    def refused(headers):
        try:
            asyncio.run(batch_exchange(service.port, [{"id": 1, "text": "x"}], headers=headers))
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code
        return None

    assert refused(None) == 403
    assert refused({"Authorization": "Bearer rcp_batch-reader"}) == 403
    answer = asyncio.run(
        batch_exchange(service.port, [{"id": 1, "text": "ok"}], headers={"Authorization": f"Bearer {token}"})
    )
    assert answer[0]["result"]["upper"] == "OK"
