"""Tasks for the replica tests: ``CLUSTER_TASKS`` trivial tasks (c000, c001, ...) due every
``CLUSTER_EVERY`` seconds (default 2), and ``sleeper``, which runs until terminated."""

import asyncio
import os

from rocketry import Grouper

group = Grouper()


async def _trivial():
    return None


for _i in range(int(os.environ.get("CLUSTER_TASKS", "5"))):
    every = os.environ.get("CLUSTER_EVERY", "2")
    group.task(f"every {every} seconds", name=f"c{_i:03d}", execution="async")(_trivial)


@group.task("false", execution="async")
async def sleeper():
    await asyncio.sleep(300)
