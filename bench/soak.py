"""Soak: a task every second for 10 minutes with retention on; memory must stay flat.

    python bench/soak.py [--seconds 600] [--keep 100]

Runs the real service with one busy task (``every 1 second``), retention of ``--keep``
records per task pruned every 30 s, and prints the service's RSS and the number of stored
records every minute, then the first and last RSS.
"""

import argparse
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from common import Service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--keep", type=int, default=100)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between two samples")
    args = parser.parse_args()
    env = {
        "BENCH_FAST_TASKS": "1",
        "BENCH_FAST_CONDITION": "every 1 second",
        "SCHEDULER_RETENTION_PER_TASK": str(args.keep),
        "SCHEDULER_RETENTION_INTERVAL": "30",
    }
    with tempfile.TemporaryDirectory() as tmp, Service(Path(tmp), tasks=0, env=env) as service:
        engine = sa.create_engine(f"sqlite:///{service.database}")
        samples = []
        began = time.monotonic()
        print("| minute | RSS MiB | checks so far | records stored |")
        print("|---|---|---|---|")
        while True:
            elapsed = time.monotonic() - began
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM task_log")).scalar()
            runs = service.client.get("/session").json()["checks"]
            samples.append(service.rss_mib())
            print(f"| {elapsed / 60:.0f} | {samples[-1]:.1f} | {runs} | {stored} |", flush=True)
            if elapsed >= args.seconds:
                break
            time.sleep(min(args.every, args.seconds - elapsed + 0.01))
        engine.dispose()
        health = service.client.get("/health").json()
    print(
        f"RSS {samples[0]:.1f} MiB at start, {samples[-1]:.1f} MiB at the end "
        f"({samples[-1] - samples[0]:+.1f} MiB); health {health['status']}"
    )


if __name__ == "__main__":
    main()
