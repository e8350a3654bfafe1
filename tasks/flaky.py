"""A task that fails now and then, so the history shows failures with their tracebacks."""

import random

from rocketry import Grouper

group = Grouper()


@group.task("every 1 minute", execution="async")
async def flaky_sync():
    """Fails about one run in three, like a call to an unreliable service."""
    if random.random() < 1 / 3:
        raise ConnectionError("the remote service did not answer")
