"""Starting the real service (``python main.py``) on a free loopback port, and stopping it."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.utils.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """One ``python main.py`` process; the test that starts it stops it (``stop`` kills)."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database: str | None = None,
        port: int | None = None,
        packages: str = '["tests.support_tasks"]',
        env: dict[str, str] | None = None,
    ):
        self.port = port or free_port()
        self.database = database or str(tmp_path / "service.db")
        self.output = tmp_path / f"service-{self.port}-{os.urandom(3).hex()}.log"
        self.env = {
            **os.environ,
            "SCHEDULER_TASK_PACKAGES": packages,
            "SCHEDULER_TASK_FUNC_PACKAGES": '["tests.support_tasks"]',
            "SCHEDULER_CYCLE_SLEEP": "0.05",
            "SCHEDULER_SHUTDOWN_TIMEOUT": "4",
            "SCHEDULER_BATCH_EXAMPLE": "false",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def start(self) -> "ServiceProcess":
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "main.py", "--port", str(self.port), "--database", self.database],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        def healthy():
            if self.process.poll() is not None:
                raise AssertionError(f"service exited with {self.process.returncode}:\n{self.log()}")
            try:
                return self.client.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=timeout, what="service healthy")

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"service did not exit within {timeout} s:\n{self.log()}") from exc

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def task(self, name: str) -> dict:
        response = self.client.get(f"/tasks/{name}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_task(self, name: str, predicate, timeout: float = 10.0) -> dict:
        return wait_until(
            lambda: predicate(self.task(name)) and self.task(name), timeout=timeout, what=f"task {name}"
        )

    def logs(self, **params) -> list[dict]:
        response = self.client.get("/logs", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def stop(self) -> None:
        """Kill the service and its task processes if a test left them running."""
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            for child in self.children():
                child.kill()
            self.process.kill()
            self.process.wait(timeout=10)
