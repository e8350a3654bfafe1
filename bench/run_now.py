"""Run-now latency: from sending ``POST /tasks/{name}/run`` to the task's first line.

    python bench/run_now.py [--tasks 10 5000] [--runs 50]

The ``mark_*`` tasks write ``time.time()`` as their first statement; the client notes
``time.time()`` just before sending the request. Both run on this machine's clock.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import Service, ms, percentile, seed


def measure(service: Service, name: str, runs: int) -> list[float]:
    values = []
    for _ in range(runs):
        before = service.mark_file.read_text().count("\n") if service.mark_file.exists() else 0
        sent = time.time()
        response = service.client.post(f"/tasks/{name}/run")
        response.raise_for_status()
        deadline = time.monotonic() + 30
        while True:
            lines = service.mark_file.read_text().splitlines() if service.mark_file.exists() else []
            if len(lines) > before:
                values.append(float(lines[-1]) - sent)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.0002)
        while service.client.get(f"/tasks/{name}").json()["is_running"]:
            time.sleep(0.005)
        time.sleep(0.05)
    return values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 5000])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--executions", nargs="+", default=["async", "thread", "process"])
    args = parser.parse_args()
    print("| tasks | execution | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for tasks in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            seed(Path(tmp) / f"bench-{tasks}.db", tasks=tasks)
            with Service(Path(tmp), tasks=tasks) as service:
                for execution in args.executions:
                    values = measure(service, f"mark_{execution}", args.runs)
                    print(
                        f"| {tasks} | {execution} | {ms(statistics.median(values))} "
                        f"| {ms(percentile(values, 95))} | {ms(max(values))} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
