"""Celery run-now latency: from sending ``POST /tasks/mark_celery/run`` to the first line of
the task on a worker, against the same for a local async run.

    python bench/celery_run_now.py [--runs 100] [--database postgresql://...] [--broker URL]

Needs the broker (RabbitMQ on 127.0.0.1:5672 by default). The service and one worker
(``celery -A worker worker``, prefork, one process) run on this machine, on an SQLite file
unless ``--database`` is given; the worker is warmed up first (its first run imports the
task package and opens the database).
"""

import argparse
import statistics
import tempfile
import uuid
from pathlib import Path

from common import Service, celery_worker, ms, percentile
from run_now import measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database", default=None)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "bench.db")
        shared = {
            "SCHEDULER_DATABASE": database,
            "SCHEDULER_CELERY_BROKER": args.broker,
            "SCHEDULER_CELERY_QUEUE": queue,
            "SCHEDULER_TASK_PACKAGES": '["bench.bench_tasks"]',
        }
        with Service(Path(tmp), tasks=10, env=shared, database=database) as service:
            shared["BENCH_MARK_FILE"] = str(service.mark_file)
            with celery_worker(shared, queue=queue):
                measure(service, "mark_celery", 5)  # warm-up
                print("| execution | runs | p50 ms | p95 ms | max ms |")
                print("|---|---|---|---|---|")
                for name in ("mark_async", "mark_celery"):
                    values = measure(service, name, args.runs)
                    print(
                        f"| {name.removeprefix('mark_')} | {len(values)} | {ms(statistics.median(values))} "
                        f"| {ms(percentile(values, 95))} | {ms(max(values))} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
