"""Reading the history: ``GET /logs`` at a large store, and the service's memory.

    python bench/logs.py [--records 1000000] [--tasks 1000]

Seeds the SQLite store with ``--records`` records spread over ``--tasks`` tasks, starts
the real service on it and times ``GET /logs?task=X&limit=100`` (and other shapes).
"""

import argparse
import random
import tempfile
import time
from pathlib import Path

from common import Service, seed, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    per_task = args.records // args.tasks
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        seed(Path(tmp) / f"bench-{args.tasks}.db", tasks=args.tasks, records_per_task=per_task)
        print(f"seeded {per_task * args.tasks:,} records in {time.perf_counter() - began:.1f} s")
        with Service(Path(tmp), tasks=args.tasks) as service:
            rss_start = service.rss_mib()
            task = f"t{random.randrange(args.tasks):05d}"
            shapes = {
                f"GET /logs?task={task}&limit=100": f"/logs?task={task}&limit=100",
                "GET /logs?limit=100": "/logs?limit=100",
                "GET /logs?action=success&limit=1000": "/logs?action=success&limit=1000",
                f"GET /tasks/{task}/logs": f"/tasks/{task}/logs",
            }
            for label, path in shapes.items():
                print(f"{label}: {summary(service.latencies(path, args.samples))}", flush=True)
            body = service.client.get(f"/logs?task={task}&limit=100").json()
            pages = 1
            while body["next_cursor"] and pages < 5:
                body = service.client.get(f"/logs?task={task}&limit=100&cursor={body['next_cursor']}").json()
                pages += 1
            print(f"paged {pages} pages of {task} with the cursor")
            rss_end = service.rss_mib()
            print(f"service RSS: {rss_start:.0f} MiB after start, {rss_end:.0f} MiB after the queries")


if __name__ == "__main__":
    main()
