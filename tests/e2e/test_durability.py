"""Definitions survive restarts of the real server; broken ones do not stop it from starting."""

import json
import os
import signal
import sqlite3

import pytest

from tests.utils.service_process import ServiceProcess

pytestmark = pytest.mark.slow


def restart(start, service: ServiceProcess, how=signal.SIGTERM, **kwargs) -> ServiceProcess:
    service.send(how)
    service.wait_exit()
    return start(database=service.database, **kwargs)


def test_everything_made_through_the_api_is_there_after_a_restart(start):
    service = start()
    c = service.client
    made = {
        "name": "made",
        "func": "tests.support_tasks.probes:quick",
        "start_cond": "every 2 hours",
        "priority": 4,
        "parameters": {"n": 3},
        "overlap": "buffer_one",
        "description": "kept",
    }
    assert c.post("/tasks", json=made).status_code == 201
    assert c.post("/tasks", json={**made, "name": "doomed"}).status_code == 201
    assert c.patch("/tasks/quick", json={"start_cond": "daily after 23:59", "timeout": 5}).status_code == 200
    assert c.post("/tasks/failing/disable", json={"reason": "noisy"}).status_code == 200
    assert (
        c.put("/session/parameters/region", json={"value": {"name": "eu", "zones": [1, 2]}}).status_code
        == 200
    )
    assert c.delete("/tasks/doomed").status_code == 204
    before = {name: service.task(name) for name in ("made", "quick", "failing")}
    versions = c.get("/tasks/made/versions").json()["data"]

    again = restart(start, service)
    for name, task in before.items():
        now = again.task(name)
        for field in (
            "origin",
            "target",
            "start_cond",
            "end_cond",
            "execution",
            "priority",
            "timeout",
            "parameters",
            "overlap",
            "disabled",
            "description",
            "overridden",
        ):
            assert now[field] == task[field], (name, field)
    assert again.task("quick")["overridden"] == ["start_cond", "timeout"]
    assert again.client.get("/tasks/doomed").status_code == 404
    assert again.client.get("/session/parameters/region").json()["value"] == {"name": "eu", "zones": [1, 2]}
    assert again.client.get("/tasks/made/versions").json()["data"] == versions
    assert again.client.get("/definitions/broken").json() == []


def test_an_edit_acknowledged_before_a_kill_is_kept(start):
    service = start()
    assert service.client.patch("/tasks/quick", json={"priority": 9}).status_code == 200
    again = restart(start, service, how=signal.SIGKILL)
    assert again.task("quick")["priority"] == 9


def test_broken_definitions_are_reported_and_the_rest_starts(start, tmp_path):
    package = tmp_path / "dynjobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "work.py").write_text("def job():\n    return 1\n")
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "SCHEDULER_TASK_FUNC_PACKAGES": json.dumps(["dynjobs", "tests.support_tasks"]),
    }
    service = start(env=env)
    c = service.client
    assert c.post("/tasks", json={"name": "gone", "func": "dynjobs.work:job"}).status_code == 201
    assert (
        c.post("/tasks", json={"name": "fine", "func": "tests.support_tasks.probes:quick"}).status_code == 201
    )
    assert (
        c.post("/tasks", json={"name": "sneaky", "func": "tests.support_tasks.probes:quick"}).status_code
        == 201
    )
    assert c.patch("/tasks/quick", json={"priority": 2}).status_code == 200
    service.send(signal.SIGTERM)
    service.wait_exit()
    # The function's module is removed, and the stored edit of a code task is corrupted.
    (package / "work.py").unlink()
    with sqlite3.connect(service.database) as db:
        db.execute(
            "UPDATE task_definitions SET fields = ? WHERE name = 'quick'",
            (json.dumps({"start_cond": "every banana"}),),
        )
        # A stored target that walks through an imported module must not run after a restart.
        db.execute(
            "UPDATE task_definitions SET fields = json_set(fields, '$.func', ?) WHERE name = 'sneaky'",
            ("tests.support_tasks.probes:os.system",),
        )

    again = start(database=service.database, env=env)
    broken = {b["name"]: b for b in again.client.get("/definitions/broken").json()}
    assert set(broken) == {"gone", "quick", "sneaky"}
    assert "no dotted path" in broken["sneaky"]["reason"]
    assert again.client.get("/tasks/sneaky").status_code == 404
    assert "cannot import dynjobs.work" in broken["gone"]["reason"]
    assert "every banana" in broken["quick"]["reason"]
    assert broken["gone"]["definition"]["func"] == "dynjobs.work:job"
    assert again.client.get("/tasks/gone").status_code == 404
    assert again.task("fine")["origin"] == "runtime"
    quick = again.task("quick")  # back on its code definition
    assert (quick["priority"], quick["overridden"]) == (0, [])
    assert "Stored definition of task 'gone' not loaded" in again.log()
    assert again.client.get("/health").json()["status"] == "ok"


def test_stored_text_utf8_cannot_encode_never_breaks_a_read(start):
    """Written before text was checked at the door: every read still answers."""
    service = start()
    made = {"name": "made", "func": "tests.support_tasks.probes:quick", "description": "fine"}
    assert service.client.post("/tasks", json=made).status_code == 201
    assert service.client.put("/session/parameters/region", json={"value": "eu"}).status_code == 200
    service.send(signal.SIGTERM)
    service.wait_exit()
    bad = "bad \\ud800"  # a JSON escape: it decodes to a lone surrogate
    with sqlite3.connect(service.database) as db:
        db.execute("UPDATE session_parameters SET value = ?", (f'"{bad}"',))
        db.execute("UPDATE task_definitions SET fields = json_set(fields, '$.description', ?)", ("x",))
        db.execute("UPDATE task_definitions SET fields = replace(fields, '\"x\"', ?)", (f'"{bad}"',))
        db.execute("UPDATE task_versions SET changes = ?", (f'{{"description": ["{bad}", "{bad}"]}}',))

    again = start(database=service.database)
    for path in ("/session/parameters", "/definitions", "/tasks", "/tasks/made", "/tasks/made/versions"):
        response = again.client.get(path)
        assert response.status_code == 200, (path, response.text)
    assert again.client.get("/session/parameters/region").json()["value"] == "bad \\ud800"
    assert again.task("made")["description"] == "bad \\ud800"
