"""The command line's tests: a real ``python main.py`` per module, and the CLI run as a
subprocess against it, as an operator runs it."""

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.utils.service_process import REPO, ServiceProcess

# The CLI reads these; the tests' own environment must not leak a URL or a token into it.
_CLI_VARIABLES = ("SCHEDULER_URL", "SCHEDULER_TOKEN")


def serve(tmp_path: Path, env: dict[str, str] | None = None) -> ServiceProcess:
    service = ServiceProcess(tmp_path, env=env).start()
    try:
        service.wait_healthy()
    except BaseException:
        service.stop()
        raise
    return service


class Cli:
    """Runs ``python -m control.cli`` against ``url`` (with ``token``, if given)."""

    def __init__(self, url: str, token: str | None = None):
        self.env = {key: value for key, value in os.environ.items() if key not in _CLI_VARIABLES}
        self.env["SCHEDULER_URL"] = url
        if token is not None:
            self.env["SCHEDULER_TOKEN"] = token

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "control.cli", *args]

    def __call__(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args), cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start(self, *args: str) -> "Running":
        """The CLI left running (``--follow``, ``--wait``), its output read line by line."""
        process = subprocess.Popen(
            self.command(*args),
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Running(process)


class Running:
    """A CLI process whose stdout lines arrive on a queue, so a test waits for a line with a
    timeout instead of blocking on a read that may never end."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, text: str, timeout: float = 15.0) -> str:
        """The first line from now on that contains ``text``."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout} s; seen: {self.seen}") from None
            if line is None:
                code = self.process.wait()
                raise AssertionError(f"the CLI ended ({code}) before {text!r}; seen: {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def rest(self, timeout: float = 15.0) -> list[str]:
        """Every line it wrote after those seen, once it has ended."""
        lines = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            lines.append(line)
        return lines

    def wait(self, timeout: float = 15.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def stderr(self) -> str:
        return self.process.stderr.read()

    def stop(self) -> None:
        """End it (by its own PID) if the test did not see it end."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self._reader.join(10)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def running():
    """``running(cli, *args)`` starts a CLI process; each is stopped after the test."""
    started: list[Running] = []

    def _start(cli: Cli, *args: str) -> Running:
        process = cli.start(*args)
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop()
