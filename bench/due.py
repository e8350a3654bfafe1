"""Sustained due work: how many starts a second the scheduler keeps up with, step by step.

    python bench/due.py [--store sqlite|postgres] [--every 1] [--rates 50 100 200 400 800]
                        [--seconds 10] [--all] [--execution celery --concurrency 2]

One service (on a SQLite file, or on a fresh PostgreSQL database where it leads alone and
claims every start in the database). At each step the bench adds trivial async tasks
(``bench.bench_tasks.trivial:noop``) through ``POST /tasks`` with the condition
``every {--every} seconds`` until there are ``rate × every`` of them, so ``rate`` starts
are due a second. New tasks are created at an even pace over one period, so their due
times are spread rather than all at one instant. After the step has settled (two periods
and 2 s), it counts the starts over ``--seconds`` from the log store.

A task's due time is its previous start plus the period (``every`` counts from the last
start), so each start's lag is ``start − (previous start + period)``. Prints, per step:
starts due a second, starts made a second, lag p50/p99/max, and the service's CPU (% of
one core). Stops after the first step whose lag p99 exceeds 100 ms, unless ``--all``.

With ``--execution celery`` the tasks run on a Celery worker (``--concurrency`` processes,
broker ``--broker``); a start is then the run's send, and a task whose previous run has not
come back from the worker when it is due skips that start (its overlap policy), which
shows as lag.
"""

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import sqlalchemy as sa
from common import Service, celery_worker, ms, percentile, postgres_database, store_url

FUNC = "bench.bench_tasks.trivial:noop"
ENV = {"SCHEDULER_TASK_FUNC_PACKAGES": '["bench.bench_tasks"]', "BENCH_TASKS": "0"}
RUNS = sa.text(
    "SELECT task_name, created FROM task_log "
    "WHERE action = 'run' AND task_name LIKE 'd%' AND created >= :since AND created < :until"
)
LIMIT = 0.100  # the lag p99 a rate must keep to count as kept up with


async def create(port: int, first: int, count: int, every: float, execution: str) -> None:
    """Create tasks ``first`` … ``first + count - 1``, one every ``every / count`` seconds
    (as far as the service keeps up: up to 8 requests in flight)."""
    limit = asyncio.Semaphore(8)
    began = time.monotonic()

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with limit:
            body = {"name": f"d{i:05d}", "func": FUNC, "start_cond": f"every {every:g} seconds"}
            body["execution"] = execution
            response = await client.post("/tasks", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"creating d{i:05d}: {response.status_code} {response.text}")

    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        asyncio.TaskGroup() as group,
    ):
        for k in range(count):
            await asyncio.sleep(max(0.0, began + k * every / count - time.monotonic()))
            group.create_task(one(client, first + k))


def lags(engine: sa.Engine, since: float, until: float, every: float) -> tuple[int, list[float]]:
    """Starts in [since, until) and the lag of each (a start needs the one before it)."""
    with engine.connect() as conn:
        rows = conn.execute(RUNS, {"since": since - 2 * every - 1, "until": until}).all()
    starts = defaultdict(list)
    for name, created in rows:
        starts[name].append(created)
    count, values = 0, []
    for stamps in starts.values():
        stamps.sort()
        for before, start in zip(stamps, stamps[1:], strict=False):
            if since <= start < until:
                count += 1
                values.append(start - before - every)
    return count, values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--every", type=float, default=1.0, help="the tasks' period, seconds")
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 100, 200, 300, 400, 600, 800, 1200])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per step")
    parser.add_argument("--all", action="store_true", help="go on past the first rate not kept up with")
    parser.add_argument("--execution", choices=["async", "celery"], default="async")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    print(
        f"store: {args.store}; {args.execution} tasks every {args.every:g} s; "
        f"{args.seconds:g} s measured per step"
        + (f"; one Celery worker of {args.concurrency} processes" if args.execution == "celery" else "")
    )
    print("| starts due /s | tasks | starts made /s | lag p50 ms | lag p99 ms | lag max ms | CPU % |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_database()) if args.store == "postgres" else None
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        env = ENV | {"SCHEDULER_CELERY_BROKER": args.broker, "SCHEDULER_CELERY_QUEUE": queue}
        service = stack.enter_context(Service(Path(tmp), tasks=0, env=env, database=database))
        if args.execution == "celery":
            shared = env | {"SCHEDULER_DATABASE": str(database or service.database)}
            stack.enter_context(celery_worker(shared, queue=queue, concurrency=args.concurrency))
        engine = sa.create_engine(store_url(database or service.database))
        stack.callback(engine.dispose)
        tasks = 0
        for rate in args.rates:
            wanted = round(rate * args.every)
            if wanted > tasks:
                asyncio.run(create(service.port, tasks, wanted - tasks, args.every, args.execution))
                tasks = wanted
            time.sleep(2 * args.every + 2)
            since = time.time()
            cpu = service.cpu_percent(args.seconds)
            until = time.time()
            time.sleep(1)  # the last records reach the store
            count, values = lags(engine, since, until, args.every)
            p99 = percentile(values, 99)
            print(
                f"| {rate} | {tasks} | {count / (until - since):.0f} | {ms(statistics.median(values))} "
                f"| {ms(p99)} | {ms(max(values))} | {cpu:.0f} |",
                flush=True,
            )
            if p99 > LIMIT and not args.all:
                break


if __name__ == "__main__":
    main()
