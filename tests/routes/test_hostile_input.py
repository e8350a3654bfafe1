"""Input a client controls, at its worst: never a 5xx, always a JSON 4xx that says what is wrong."""

import asyncio
import collections
import sys

import pytest

from tests.utils.fixtures import make_settings, start_service, stop_service
from tests.utils.waiting import async_wait_until

JSON = {"content-type": "application/json"}
# A lone surrogate, escaped as JSON allows: it decodes to a str that UTF-8 cannot encode.
LONE = b"\\ud800"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PATCH", "/tasks/quick", b'{"description": "bad ' + LONE + b'"}'),
        ("PATCH", "/tasks/quick", b'{"priority": "' + LONE + b'"}'),  # echoed back by a type error
        ("POST", "/tasks", b'{"name": "x' + LONE + b'", "func": "tests.support_tasks.probes:quick"}'),
        ("POST", "/tasks/quick/run", b'{"n": "' + LONE + b'"}'),
        ("POST", "/tasks/quick/run", b'{"' + LONE + b'": 1}'),
        ("PUT", "/session/parameters/region", b'{"value": {"nested": ["' + LONE + b'"]}}'),
        ("POST", "/definitions/import", b'{"parameters": {"p": "' + LONE + b'"}}'),
        ("POST", "/conditions/validate", b'{"condition": "every ' + LONE + b'"}'),
        ("POST", "/tasks/quick/disable", b'{"reason": "' + LONE + b'"}'),
        ("PATCH", "/tasks/quick", b'{"description": "raw \xed\xa0\x80 bytes"}'),
    ],
)
async def test_text_that_is_not_unicode_is_refused_with_a_json_422(service, method, path, body):
    response = await service.client.request(method, path, content=body, headers=JSON)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "unicode_error" and error["loc"][0] == "body"
    assert (await service.client.get("/session/parameters")).status_code == 200
    assert (await service.client.get("/definitions")).status_code == 200


async def test_surrogate_pairs_are_ordinary_text(service):
    body = b'{"description": "rocket \\ud83d\\ude80"}'
    response = await service.client.patch("/tasks/quick", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "rocket \U0001f680"


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("GET", "/logs", {"params": {"cursor": "OTk5OTk5OTk5OjE4NDQ2NzQ0MDczNzA5NTUxNjE2"}}),
        ("GET", "/logs", {"params": {"cursor": "aW5mOjE"}}),  # "inf:1"
        ("GET", "/audit", {"params": {"cursor": "OTk5OTk5OTk5OjE4NDQ2NzQ0MDczNzA5NTUxNjE2"}}),
        ("GET", "/tasks/quick/versions", {"params": {"cursor": "OTk5OTk5OTk5OjE4NDQ2NzQ0MDczNzA5NTUxNjE2"}}),
        ("POST", "/tasks/quick/versions/18446744073709551616/restore", {}),
        ("GET", "/events", {"headers": {"Last-Event-ID": "18446744073709551616"}}),
    ],
)
async def test_ids_and_cursors_beyond_64_bits_are_422(service, method, path, kwargs):
    response = await service.client.request(method, path, **kwargs)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_changes_racing_a_delete_of_the_same_task_are_404(service):
    c = service.client
    seen = collections.Counter()
    for i in range(10):
        name = f"raced{i}"
        created = await c.post("/tasks", json={"name": name, "func": "tests.support_tasks.probes:quick"})
        assert created.status_code == 201
        # The first edit holds the write lock while it is stored; the others queue behind it,
        # each having found the task before the first delete removes it.
        answers = await asyncio.gather(
            c.patch(f"/tasks/{name}", json={"priority": 3}),
            c.delete(f"/tasks/{name}"),
            c.post(f"/tasks/{name}/disable"),
            c.delete(f"/tasks/{name}"),
            c.patch(f"/tasks/{name}", json={"priority": 4}),
            c.post(f"/tasks/{name}/enable"),
            c.post(f"/tasks/{name}/versions/1/restore"),
        )
        seen.update(answer.status_code for answer in answers)
        assert answers[1].status_code == 204
        assert all(a.headers["content-type"] == "application/json" for a in answers if a.status_code == 404)
    assert set(seen) <= {200, 204, 404}, seen
    assert seen[404] >= 10 * 4
    await async_wait_until(lambda: service.scheduler.is_ready, what="scheduler running")


@pytest.mark.parametrize(
    "parameters, says",
    [
        ({"count": "5"}, "parameter count: Input should be a valid integer"),
        ({"count": 101}, "parameter count: Input should be less than or equal to 100"),
        ({"count": -1}, "greater than or equal to 0"),
        ({"count": 2.5}, "parameter count"),
        ({"ratio": "fast"}, "parameter ratio"),
        ({"label": 3}, "parameter label: Input should be a valid string"),
        ({"tags": ["a", 1]}, "parameter tags.1"),
        ({"nope": 1}, "takes no parameter 'nope'"),
    ],
)
async def test_run_parameters_are_checked_against_the_annotations(service, parameters, says):
    for response in (
        await service.client.post("/tasks/typed/run", json=parameters),
        await service.client.patch("/tasks/typed", json={"parameters": parameters}),
    ):
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["type"] == "parameters_error" and says in error["msg"], error
    assert service.task("typed").status is None


async def test_parameters_rocketry_fills_in_cannot_be_set(service):
    response = await service.client.post("/tasks/slow_thread/run", json={"flag": True})
    assert response.status_code == 422
    assert "takes no parameter 'flag'" in response.text


async def test_parameters_that_fit_the_annotations_are_passed_as_sent(service):
    parameters = {"count": 100, "ratio": 1, "label": "ok", "tags": ["a"], "anything": {"x": [1, None]}}
    assert (await service.client.post("/tasks/typed/run", json=parameters)).status_code == 202
    await async_wait_until(lambda: service.task("typed").status == "success", what="typed ran")
    assert service.app.session.returns[service.task("typed")] == parameters


@pytest.mark.parametrize(
    "name", [".", "..", " ", "a b", "a/b", "\u202eevil", "caf\u00e9", "tab\tname", "x" * 256]
)
async def test_task_names_outside_the_safe_set_are_refused(service, name):
    response = await service.client.post(
        "/tasks", json={"name": name, "func": "tests.support_tasks.probes:quick"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


async def test_a_name_from_the_safe_set_is_accepted(service):
    response = await service.client.post(
        "/tasks", json={"name": "report_eu-2.v1", "func": "tests.support_tasks.probes:quick"}
    )
    assert response.status_code == 201, response.text


async def test_command_tasks_take_only_the_parameters_they_declare(tmp_path):
    env, serving = await start_service(make_settings(tmp_path, command_tasks=True))
    c = env.client
    echo = [sys.executable, "-c", "import sys; print(sys.argv[1:])"]
    arguments = {
        "rows": {"option": "--rows", "type": "integer"},
        "dry": {"option": "--dry-run", "type": "boolean"},
        "region": {},
    }
    try:
        created = await c.post(
            "/tasks", json={"name": "cmd", "command": echo, "arguments": arguments, "execution": "thread"}
        )
        assert created.status_code == 201, created.text
        for parameters, says in [
            ({"--output": "/tmp/x"}, "takes no parameter '--output'"),
            ({"rows": "5"}, "parameter rows"),
            ({"region": "-rf"}, "would read as an option"),
            ({"region": "a\u0000b"}, "parameter region"),
            ({"dry": "yes"}, "parameter dry"),
        ]:
            response = await c.post("/tasks/cmd/run", json=parameters)
            assert response.status_code == 422, (parameters, response.text)
            assert says in response.json()["detail"][0]["msg"], response.text
        assert (
            await c.post("/tasks/cmd/run", json={"region": "eu", "rows": 5, "dry": True})
        ).status_code == 202
        await async_wait_until(lambda: env.task("cmd").status == "success", what="the command ran")
        printed = env.app.session.returns[env.task("cmd")].decode()
        assert printed.strip() == str(["--rows", "5", "--dry-run", "eu"])
        # Session parameters do not reach a command line unless declared.
        assert (await c.put("/session/parameters/verbose", json={"value": True})).status_code == 200
        assert (await c.post("/tasks/cmd/run")).status_code == 202
        await async_wait_until(lambda: not env.task("cmd").is_alive(), what="the command ran again")
        assert env.app.session.returns[env.task("cmd")].decode().strip() == "[]"
        for refused in (
            {"name": "c2", "command": echo, "arguments": {"v": {"type": "boolean"}}},
            {"name": "c3", "command": echo, "execution": "async"},
            {"name": "c6", "command": echo, "execution": "celery"},
            {"name": "c4", "func": "tests.support_tasks.probes:quick", "arguments": {"a": {}}},
            {"name": "c5", "command": echo, "arguments": {"x": {"option": "--x; rm"}}},
        ):
            assert (await c.post("/tasks", json=refused)).status_code == 422, refused
    finally:
        await stop_service(env, serving)
