"""A task that breaks the scheduler loop on purpose, kept apart so that fuzzing cannot reach it."""

from rocketry import Grouper
from rocketry.args import Session

group = Grouper()


@group.task(execution="async")
async def sabotage(session=Session()):
    """Breaks the scheduler loop itself, to show the service does not run on headless."""

    def explode(*args, **kwargs):
        raise RuntimeError("the scheduler loop was sabotaged")

    session.hooks.scheduler_cycle.append(explode)
