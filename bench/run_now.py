"""Run-now latency: from sending ``POST /tasks/{name}/run`` to the task's first line.

    python bench/run_now.py [--tasks 10 5000] [--runs 50]

The ``mark_*`` tasks write ``time.time()`` as their first statement; the client notes
``time.time()`` just before sending the request. Both run on this machine's clock.
"""

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from common import Service, ms, percentile, read_response, seed


def measure(service: Service, name: str, runs: int) -> list[float]:
    """Requests go out on a raw keep-alive socket, built in advance, so the figure starts
    when the request is sent rather than when an HTTP client begins to build it."""
    request = (f"POST /tasks/{name}/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").encode()
    values = []
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(runs):
            before = service.mark_file.read_text().count("\n") if service.mark_file.exists() else 0
            sent = time.time()
            sock.sendall(request)
            if read_response(sock) != 202:
                raise RuntimeError(f"run request for {name} refused")
            values.append(_wait_mark(service, name, before, sent))
            while service.client.get(f"/tasks/{name}").json()["is_running"]:
                time.sleep(0.005)
            time.sleep(0.05)
    return values


def _wait_mark(service: Service, name: str, before: int, sent: float) -> float:
    """Seconds from ``sent`` to the time the task wrote as its first line."""
    deadline = time.monotonic() + 30
    while True:
        lines = service.mark_file.read_text().splitlines() if service.mark_file.exists() else []
        if len(lines) > before:
            return float(lines[-1]) - sent
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.0002)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 5000])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--executions", nargs="+", default=["async", "thread", "process"])
    args = parser.parse_args()
    print("| tasks | execution | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for tasks in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            seed(Path(tmp) / f"bench-{tasks}.db", tasks=tasks)
            with Service(Path(tmp), tasks=tasks) as service:
                time.sleep(args.settle)  # let start-up work (the first pass over all tasks) end
                for execution in args.executions:
                    values = measure(service, f"mark_{execution}", args.runs)
                    print(
                        f"| {tasks} | {execution} | {ms(statistics.median(values))} "
                        f"| {ms(percentile(values, 95))} | {ms(max(values))} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
