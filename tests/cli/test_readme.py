"""The README's "Command line" section, run as written against the example tasks, and its
table of exit codes checked against the command line's own."""

from control.cli.exits import ExitCode

import json
import re
import shlex
import subprocess
import sys

import pytest

from tests.cli.conftest import Cli, serve
from tests.utils.service_process import REPO

pytestmark = pytest.mark.slow

README = (REPO / "README.md").read_text()
EXAMPLES = {"SCHEDULER_TASK_FUNC_PACKAGES": '["tasks"]', "SCHEDULER_CYCLE_SLEEP": "0.1"}


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    return README[start : README.index("\n## ", start + 1)]


def test_the_examples_run_as_written(tmp_path):
    (block,) = re.findall(r"```sh\n(.*?)```", section("Command line"), flags=re.S)
    commands = [shlex.split(line, comments=True) for line in block.strip().splitlines()]
    assert len(commands) >= 14
    service = serve(tmp_path, env={**EXAMPLES, "SCHEDULER_TASK_PACKAGES": '["tasks"]'})
    env = {**Cli(f"http://127.0.0.1:{service.port}").env, "PYTHONPATH": str(REPO)}
    run_id = None
    try:
        for argv in commands:
            assert argv[:3] == [".venv/bin/python", "-m", "control.cli"], argv
            argv = [sys.executable, *argv[1:]]
            if "<run_id>" in argv:
                argv[argv.index("<run_id>")] = run_id
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
            if match := re.search(r"run ([0-9a-f]{32})", done.stdout):
                run_id = match.group(1)
            if argv[-1] == "shutdown":
                assert service.wait_exit() == 0
            if argv[3:4] == ["output"]:
                assert "report of 3 rows" in done.stdout
            if argv[-2:] == ["--json", "session"] or argv[-1:] == ["session"]:
                assert json.loads(done.stdout)["state"] == "running"
    finally:
        service.stop()
    assert json.loads((tmp_path / "backup.json").read_text())["code_task_edits"]["heartbeat"]["timeout"] == 5


def test_the_table_of_exit_codes_is_the_command_lines():
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section("Command line"), flags=re.M)
    assert [int(code) for code, _ in rows] == sorted(code.value for code in ExitCode)
    shown = Cli("http://127.0.0.1:1")("--help").stdout
    for code, _ in rows:
        assert re.search(rf"^\s+{code}  \S", shown, re.M), code
