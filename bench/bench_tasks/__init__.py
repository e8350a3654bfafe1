"""Tasks for the benchmarks, shaped by environment variables.

BENCH_TASKS        number of idle tasks (default 10), named t00000, t00001, ...
BENCH_CONDITION    their start condition (default "every 1 hour"; the benchmark seeds a
                   recent run for each, so they are evaluated every cycle but do not fire)
BENCH_MARK_FILE    where the ``mark_*`` tasks append the time of their first line
BENCH_FAST_TASKS   number of busy tasks (default 0), named f00000, ..., with condition
BENCH_FAST_CONDITION (default "every 5 seconds")
"""

import os
import time

from rocketry import Grouper

group = Grouper()


def _idle():
    return None


for _i in range(int(os.environ.get("BENCH_TASKS", "10"))):
    group.task(os.environ.get("BENCH_CONDITION", "every 1 hour"), name=f"t{_i:05d}", execution="async")(_idle)


for _i in range(int(os.environ.get("BENCH_FAST_TASKS", "0"))):
    condition = os.environ.get("BENCH_FAST_CONDITION", "every 5 seconds")
    group.task(condition, name=f"f{_i:05d}", execution="async")(_idle)


def mark():
    # The first line: when the task began, for the run-now latency benchmark.
    stamp = time.time()
    with open(os.environ["BENCH_MARK_FILE"], "a") as out:
        out.write(f"{stamp!r}\n")


async def _mark_async():
    mark()


group.task(name="mark_async", execution="async")(_mark_async)
group.task(name="mark_thread", execution="thread")(mark)
group.task(name="mark_process", execution="process")(mark)
group.task(name="mark_celery", execution="celery")(mark)  # a worker imports it: a public name
