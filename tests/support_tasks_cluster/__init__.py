"""Tasks for the replica tests: ``CLUSTER_TASKS`` trivial tasks (c000, c001, ...) due every
``CLUSTER_EVERY`` seconds (default 2), every other one on Celery workers when
``CLUSTER_CELERY`` is set, and ``sleeper``, which runs until terminated."""

import asyncio
import os

from rocketry import Grouper

group = Grouper()


async def trivial():
    return None


for _i in range(int(os.environ.get("CLUSTER_TASKS", "5"))):
    _every = os.environ.get("CLUSTER_EVERY", "2")
    _execution = "celery" if os.environ.get("CLUSTER_CELERY") and _i % 2 else "async"
    group.task(f"every {_every} seconds", name=f"c{_i:03d}", execution=_execution)(trivial)


@group.task("false", execution="async")
async def sleeper():
    await asyncio.sleep(300)
