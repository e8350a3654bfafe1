"""Real Celery workers (``celery -A worker worker``) for the service's runs, a check that the
broker is there, and a loopback forwarder to cut a client off the broker and let it back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psutil
from kombu.utils.url import url_to_parts

from tests.utils.service_process import REPO
from tests.utils.waiting import wait_until

BROKER_URL = os.environ.get("SCHEDULER_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_BROKER_URL = os.environ.get("SCHEDULER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def broker_available(url: str = BROKER_URL) -> bool:
    parts = url_to_parts(url)
    try:
        port = parts.port or {"redis": 6379}.get(parts.scheme, 5672)
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def new_queue() -> str:
    """A queue of its own for one test, so that no other test's worker takes its runs."""
    return f"test-{uuid.uuid4().hex[:12]}"


def celery_env(*, database: str, queue: str, broker: str = BROKER_URL) -> dict[str, str]:
    """The settings a service and its workers share."""
    return {
        "SCHEDULER_DATABASE": database,
        "SCHEDULER_CELERY_BROKER": broker,
        "SCHEDULER_CELERY_QUEUE": queue,
        "SCHEDULER_TASK_PACKAGES": '["tests.support_tasks"]',
        "SCHEDULER_TASK_FUNC_PACKAGES": '["tests.support_tasks"]',
    }


class CeleryWorker:
    """One ``celery -A worker worker`` process with its pool; stopped (killed) by ``stop``."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *, name: str, concurrency: int = 2):
        self.name = name
        self.output = tmp_path / f"worker-{name}-{os.urandom(3).hex()}.log"
        self.env = {**os.environ, **env}
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        queue = self.env["SCHEDULER_CELERY_QUEUE"]
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker", "worker", "-P", "prefork",
                 "-c", str(self.concurrency), "-Q", queue, "-n", f"{self.name}@%h", "-l", "info",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed whole by kill()
            )  # fmt: skip
        try:
            wait_until(self._ready, timeout=30, what=f"worker {self.name} ready")
        except BaseException:
            self.stop()  # a worker that did not come up is not left behind
            raise
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")
        return " ready." in self.log()

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def pool(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once (a host lost, say)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


class Forwarder:
    """A loopback TCP port that passes connections on to ``target``; ``cut`` closes every
    connection and refuses new ones (the broker seems gone), ``restore`` lets them in again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()
