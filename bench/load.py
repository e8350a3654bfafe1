"""Load: 1,000 scheduled tasks (10 of them due every 5 s) and 50 concurrent clients for 60 s.

    python bench/load.py [--tasks 1000] [--fast 10] [--clients 50] [--seconds 60]
    python bench/load.py --replicas 2     # two replicas on PostgreSQL, requests round-robin

Each client holds a keep-alive connection and sends, at random: GET /tasks (10 %),
GET /logs?task=X&limit=100 (30 %), GET /tasks/{name} (40 %) and POST /tasks/{name}/run on
an idle task (20 %). Prints requests served, errors (5xx, dropped connections), p50/p99
per route idle and under load, and how late the busy tasks started under load.

By default the service is one process on SQLite. ``--replicas N`` starts N replicas on a
fresh PostgreSQL database (``--replicas 1`` is the single process on PostgreSQL, to
compare with); each client then holds a connection to every replica and sends its
requests to them in turn, as a round-robin balancer would. Idle latencies are taken on
the first replica.
"""

import argparse
import asyncio
import contextlib
import datetime
import random
import statistics
import tempfile
import time
from pathlib import Path

from common import Service, ms, percentile, postgres_database, seed

ROUTES = [("GET /tasks", 10), ("GET /logs?task=X&limit=100", 30), ("GET /tasks/{name}", 40), ("POST run", 20)]


def request_for(route: str, tasks: int) -> bytes:
    name = f"t{random.randrange(tasks):05d}"
    line = {
        "GET /tasks": "GET /tasks",
        "GET /logs?task=X&limit=100": f"GET /logs?task={name}&limit=100",
        "GET /tasks/{name}": f"GET /tasks/{name}",
        "POST run": f"POST /tasks/{name}/run",
    }[route]
    extra = "Content-Length: 0\r\n" if line.startswith("POST") else ""
    return f"{line} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


async def read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return int(lines[0].split()[1])


# uvicorn closes a keep-alive connection idle for 5 s; a round-robin client may leave one
# that long while another replica answers slowly, so it opens such a one again first.
IDLE_REOPEN = 4.0


async def client(ports: list[int], tasks: int, until: float, results: dict, counts: dict) -> None:
    """One client: a keep-alive connection to each replica, used in turn (round-robin)."""
    connections: list[tuple | None] = [None] * len(ports)
    used = [0.0] * len(ports)
    names, weights = zip(*ROUTES, strict=True)
    turn = random.randrange(len(ports))
    while time.monotonic() < until:
        route = random.choices(names, weights)[0]
        turn = (turn + 1) % len(ports)
        try:
            if connections[turn] is not None and time.monotonic() - used[turn] > IDLE_REOPEN:
                connections[turn][1].close()
                connections[turn] = None
                counts["reopened"] += 1
            if connections[turn] is None:
                connections[turn] = await asyncio.open_connection("127.0.0.1", ports[turn])
            reader, writer = connections[turn]
            began = time.perf_counter()
            writer.write(request_for(route, tasks))
            status = await read_status(reader)
            results[route].append(time.perf_counter() - began)
            counts["served"] += 1
            counts["5xx"] += status >= 500
        except (OSError, asyncio.IncompleteReadError):
            counts["dropped"] += 1
            connections[turn] = None
        used[turn] = time.monotonic()
    for connection in connections:
        if connection is not None:
            connection[1].close()


async def drive(ports: list[int], tasks: int, clients: int, seconds: float) -> tuple[dict, dict]:
    results = {route: [] for route, _ in ROUTES}
    counts = {"served": 0, "5xx": 0, "dropped": 0, "reopened": 0}
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(ports, tasks, until, results, counts) for _ in range(clients)))
    return results, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--replicas", type=int, default=0, help="replicas on PostgreSQL, round-robin (0: one on SQLite)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_database()) if args.replicas else None
        seed(database or Path(tmp) / f"bench-{args.tasks}.db", tasks=args.tasks)
        env = {"BENCH_FAST_TASKS": str(args.fast), "BENCH_FAST_CONDITION": "every 5 seconds"}
        replicas = [
            stack.enter_context(Service(Path(tmp), tasks=args.tasks, env=env, database=database))
            for _ in range(max(1, args.replicas))
        ]
        service = replicas[0]
        time.sleep(8)  # start-up work over, the busy tasks on their 5 s rhythm
        idle = {
            "GET /tasks": service.latencies("/tasks", 50),
            "GET /logs?task=X&limit=100": service.latencies("/logs?task=t00001&limit=100", 200),
            "GET /tasks/{name}": service.latencies("/tasks/t00001", 200),
        }
        began = time.time()
        results, counts = asyncio.run(
            drive([r.port for r in replicas], args.tasks, args.clients, args.seconds)
        )
        ended = time.time()
        delays = []
        for i in range(args.fast):
            runs = service.client.get("/logs", params={"task": f"f{i:05d}", "action": "run", "limit": 1000})
            stamps = sorted(
                datetime.datetime.fromisoformat(r["created"]).timestamp() for r in runs.json()["data"]
            )
            stamps = [s for s in stamps if began <= s <= ended]
            delays += [b - a - 5.0 for a, b in zip(stamps, stamps[1:], strict=False)]
        health = [r.client.get("/health").json() for r in replicas]
    where = (
        f"{args.replicas} replica(s) on PostgreSQL, round-robin" if args.replicas else "one process on SQLite"
    )
    print(
        f"{where}: {args.tasks} tasks ({args.fast} due every 5 s), "
        f"{args.clients} clients for {args.seconds:.0f} s"
    )
    print(
        f"requests served: {counts['served']} ({counts['served'] / args.seconds:.0f}/s), "
        f"5xx: {counts['5xx']}, dropped connections: {counts['dropped']}, "
        f"idle connections reopened: {counts['reopened']}"
    )
    print("| route | idle p50 | idle p99 | load p50 | load p99 | requests |")
    print("|---|---|---|---|---|---|")
    for route, _ in ROUTES:
        values = results[route]
        before = idle.get(route)
        idle_cells = f"{ms(statistics.median(before))} | {ms(percentile(before, 99))}" if before else "— | —"
        print(
            f"| {route} | {idle_cells} | {ms(statistics.median(values))} | {ms(percentile(values, 99))} "
            f"| {len(values)} |"
        )
    print(
        f"busy tasks' start delay under load: {len(delays)} starts, p50 {ms(statistics.median(delays))} ms, "
        f"p99 {ms(percentile(delays, 99))} ms, max {ms(max(delays))} ms"
    )
    print("health after: " + ", ".join(f"{h['status']} (scheduler {h['scheduler']})" for h in health))


if __name__ == "__main__":
    main()
