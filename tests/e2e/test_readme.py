"""The README's examples, run as written against the real service with the example tasks, so
that they cannot rot: the API at a glance (with curl), the token command, the batch exchange
and the task module shown under "Adding a task"."""

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from tests.utils.service_process import REPO
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow

README = (REPO / "README.md").read_text()
EXAMPLES = {"SCHEDULER_TASK_FUNC_PACKAGES": '["tasks"]', "SCHEDULER_CYCLE_SLEEP": "0.1"}


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def shell_commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments kept (the shell drops them)."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_api_at_a_glance_runs_as_written(start, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("no curl")
    service = start(packages='["tasks"]', env=EXAMPLES)
    (block,) = code_blocks(section("The API at a glance"), "sh")
    commands = shell_commands(block)
    assert len(commands) >= 19
    for command in commands:
        command = command.replace("localhost:8000", f"127.0.0.1:{service.port}")
        if "<next_cursor of the previous page>" in command:
            cursor = service.client.get("/logs", params={"limit": 1}).json()["next_cursor"]
            command = command.replace("<next_cursor of the previous page>", cursor)
        if "/run" in command:
            # A run of the same task must not still be going (its policy would make it 409).
            name = re.search(r"/tasks/(\w+)/run", command).group(1)
            service.wait_task(name, lambda t, name=name: not t["is_running"] or name == "long_job")
        # The status goes to stderr, so that the output (and its redirection) is as written.
        command = command.replace("curl ", "curl -sS -w '%{stderr}%{http_code}' ", 1)
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
        status = int(done.stderr.strip()[-3:])
        assert 200 <= status < 300, (command, status, done.stdout[:500])
        if "/session/shutdown" in command:
            assert service.wait_exit() == 0
    assert json.loads((tmp_path / "backup.json").read_text())["runtime_tasks"][0]["name"] == "report_eu"


def test_the_token_command_prints_what_the_readme_shows():
    (block,) = [b for b in code_blocks(section("Security"), "sh") if "control.tokens" in b]
    command, *shown = block.strip().splitlines()
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/python"
    printed = subprocess.run(
        [sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for line, example in zip(printed, shown, strict=True):
        prefix = example.removeprefix("# ").split("…")[0]
        assert line.startswith(prefix), (line, example)


def test_the_batch_exchange_answers_as_shown(start):
    (block,) = [b for b in code_blocks(section("Live updates, run output and the batch example"), "sh")]
    lines = block.strip().splitlines()
    assert lines[0].startswith(".venv/bin/python -m websockets ws://127.0.0.1:8000/batch")
    sent = [json.loads(line[2:]) for line in lines if line.startswith("> ")]
    shown = [json.loads(line[2:]) for line in lines if line.startswith("< ")]
    service = start(env={"SCHEDULER_BATCH_EXAMPLE": "true", "SCHEDULER_BATCH_EVERY": "0.2"})

    async def exchange() -> list[dict]:
        async with websockets.connect(f"ws://127.0.0.1:{service.port}/batch") as socket:
            for message in sent:
                await socket.send(json.dumps(message))
            return [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in sent]

    assert asyncio.run(exchange()) == shown
    # The command itself exists where the README says.
    subprocess.run([sys.executable, "-m", "websockets", "--version"], check=True, capture_output=True)


def test_the_task_module_under_adding_a_task_is_found(start, tmp_path):
    (snippet,) = code_blocks(section("Adding a task"), "python")
    path, body = snippet.split("\n", 1)
    assert path == "# tasks/billing.py"
    package = tmp_path / "mytasks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "billing.py").write_text(body)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    service = start(packages='["mytasks"]', env=env)
    task = service.task("close_the_day")
    assert (task["start_cond"], task["execution"]) == ("daily after 02:00", "process")
    assert service.client.post("/tasks/close_the_day/run", json={"region": "us"}).status_code == 202
    service.wait_task("close_the_day", lambda t: t["status"] == "success")


def test_the_example_tasks_refuse_parameters_that_would_run_away(start):
    service = start(packages='["tasks"]', env=EXAMPLES)
    for parameters in ({"rows": 300_000_000}, {"rows": "x"}, {"rows": 10**11}):
        response = service.client.post("/tasks/daily_report/run", json=parameters)
        assert response.status_code == 422, (parameters, response.text)
        assert "parameter rows" in response.json()["detail"][0]["msg"]
    assert service.client.post("/tasks/long_job/run", json={"steps": 10**9}).status_code == 422
    assert service.client.post("/tasks/daily_report/run", json={"rows": 1_000_000}).status_code == 202
    wait_until(lambda: service.task("daily_report")["status"] == "success", what="the bounded report")


def test_readme_mentions_only_files_that_exist():
    for path in set(re.findall(r"`((?:control|tests|docs|bench|tasks)/[\w/.]+)`", README)):
        assert (REPO / path).exists() or Path(REPO, path.rstrip("/")).exists(), path
