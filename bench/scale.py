"""Cost of idle tasks: cycle time, idle CPU, memory and API latency at several task counts.

    python bench/scale.py [--tasks 10 1000 5000 10000] [--condition "every 1 hour"]

Each task has a recent run seeded in the store, so its condition is evaluated but not
due: the figures are what the scheduler spends doing nothing. API latencies are sampled
after random pauses, so time spent waiting behind a scheduler pass is counted.
"""

import argparse
import tempfile
import time
from pathlib import Path

from common import Service, seed, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 1000, 5000, 10000])
    parser.add_argument("--condition", default="every 1 hour")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=10.0)
    args = parser.parse_args()
    print(f"condition: {args.condition!r}")
    columns = [
        "tasks",
        "cycle ms",
        "cycles/s",
        "idle CPU %",
        "RSS MiB",
        "GET /health",
        "GET /tasks/{name}",
        "GET /tasks",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for tasks in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            seed(Path(tmp) / f"bench-{tasks}.db", tasks=tasks)
            with Service(Path(tmp), tasks=tasks, condition=args.condition) as service:
                service.latencies("/health", 20)  # warm up
                time.sleep(args.settle)  # let start-up work (restoring, first checks) pass
                before = service.client.get("/session").json().get("cycles", 0)
                cpu = service.cpu_percent(args.cpu_seconds)
                session = service.client.get("/session").json()
                cycle = session["mean_cycle_seconds"] or 0.0
                rate = (session.get("cycles", 0) - before) / args.cpu_seconds
                health = service.latencies("/health", args.samples)
                one = service.latencies("/tasks/t00000", args.samples)
                listing = service.latencies("/tasks", max(20, args.samples // 5))
                print(
                    f"| {tasks} | {cycle * 1000:.2f} | {rate:.1f} | {cpu:.1f} | {service.rss_mib():.0f} "
                    f"| {summary(health)} | {summary(one)} | {summary(listing)} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
