"""Shared pieces of the benchmarks: a real service process, seeded data, timing and percentiles."""

import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import control  # noqa: E402, F401  (the pydantic bridge, before the store imports redbird)
from control.stores.sql.tables import metadata, task_log  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


# The PostgreSQL server the replica benchmarks create their databases on (any database
# of it to connect to; each bench makes its own ``bench_*`` database and drops it after).
POSTGRES_SERVER = os.environ.get(
    "SCHEDULER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def postgres_database():
    """A fresh, empty database on ``POSTGRES_SERVER``, as a URL; dropped on the way out."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        yield sa.engine.make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def store_url(database: Path | str) -> str:
    """A SQLAlchemy URL for a SQLite file path or an URL given as such."""
    return database if isinstance(database, str) and "://" in database else f"sqlite:///{database}"


def seed(
    database: Path | str, *, tasks: int, records_per_task: int = 2, action_cycle=("run", "success")
) -> None:
    """Give each bench task a recent history (a run and its success, repeated), so
    ``every 1 hour`` is not due at start. ``database``: a SQLite file or a URL."""
    engine = sa.create_engine(store_url(database))
    metadata.create_all(engine)
    now = time.time()
    batch = []
    with engine.begin() as conn:
        for i in range(tasks):
            for j in range(records_per_task):
                action = action_cycle[j % len(action_cycle)]
                created = now - 60 - (records_per_task - j) * 0.001
                batch.append(
                    {
                        "task_name": f"t{i:05d}",
                        "action": action,
                        "created": created,
                        "run_id": f"{i}-{j // 2}",
                        "start": created,
                        "message": "seeded",
                    }
                )
                if len(batch) >= 50_000:
                    conn.execute(task_log.insert(), batch)
                    batch.clear()
        if batch:
            conn.execute(task_log.insert(), batch)
    engine.dispose()


class Service:
    """``python main.py`` with the bench tasks; stopped with SIGTERM (killed if need be)."""

    def __init__(
        self,
        workdir: Path,
        *,
        tasks: int,
        condition: str = "every 1 hour",
        env=None,
        database: str | None = None,
    ):
        self.port = free_port()
        self.database = database or workdir / f"bench-{tasks}.db"
        self.mark_file = workdir / "marks.txt"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEDULER_TASK_PACKAGES": '["bench.bench_tasks"]',
            "SCHEDULER_LOG_LEVEL": "warning",
            "BENCH_TASKS": str(tasks),
            "BENCH_CONDITION": condition,
            "BENCH_MARK_FILE": str(self.mark_file),
            **(env or {}),
        }
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "main.py", "--port", str(self.port), "--database", str(self.database)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}")
            try:
                if self.client.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("service did not become healthy")

    def __exit__(self, *exc):
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_percent(self, seconds: float) -> float:
        """CPU of the service process over ``seconds``, in % of one core."""
        ps = self.ps
        before = ps.cpu_times()
        time.sleep(seconds)
        after = ps.cpu_times()
        return 100 * ((after.user - before.user) + (after.system - before.system)) / seconds

    def latencies(self, path: str, n: int, *, spread: float = 0.02) -> list[float]:
        """``n`` timed GETs, each after a random pause, so waiting behind a cycle is counted.

        Sent on a raw keep-alive socket with the request built in advance, so the figure is
        the server's time and the network's, not an HTTP client's."""
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        values = []
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(n):
                time.sleep(random.uniform(0, spread))
                began = time.perf_counter()
                sock.sendall(request)
                status = read_response(sock)
                values.append(time.perf_counter() - began)
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}")
        return values


def read_response(sock: socket.socket) -> int:
    """Read one HTTP/1.1 response with a Content-Length; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(1 << 20)
    return int(lines[0].split()[1])


def summary(values: list[float]) -> str:
    return f"p50 {ms(statistics.median(values))} ms, p99 {ms(percentile(values, 99))} ms"


@contextlib.contextmanager
def celery_worker(env: dict[str, str], *, queue: str, concurrency: int = 1):
    """``celery -A worker worker`` (prefork, ``concurrency`` processes) on ``queue``, with the
    service's settings in ``env``; stopped (its process group) afterwards."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "-P", "prefork", "-c", str(concurrency),
         "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env, "SCHEDULER_CELERY_QUEUE": queue},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
