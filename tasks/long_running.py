"""A long task that runs only when asked and stops when it is terminated."""

from typing import Annotated

from pydantic import Field
from rocketry import Grouper
from rocketry.args import TerminationFlag
from rocketry.exc import TaskTerminationException

group = Grouper()


@group.task(execution="thread")
def long_job(steps: Annotated[int, Field(ge=1, le=3600)] = 600, flag=TerminationFlag()):
    """Works for about ten minutes; `POST /tasks/long_job/terminate` stops it."""
    for _ in range(steps):
        # A thread cannot be killed: it stops by checking the flag between steps.
        if flag.wait(1.0):
            raise TaskTerminationException()
