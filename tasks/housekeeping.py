"""Small recurring tasks: a heartbeat and a report that takes a parameter."""

import asyncio
import logging
from typing import Annotated

from pydantic import Field
from rocketry import Grouper

group = Grouper()
log = logging.getLogger(__name__)


@group.task("every 30 seconds", execution="async")
async def heartbeat():
    """Proves the scheduler is alive."""
    await asyncio.sleep(0)
    log.info("heartbeat")


@group.task("daily after 07:00", execution="thread")
def daily_report(rows: Annotated[int, Field(ge=0, le=1_000_000)] = 10):
    """Builds a small report; run it now with {"rows": 3} to change its size.

    The bound on ``rows`` is what keeps a client from making this thread run for minutes:
    a thread shares the interpreter with the scheduler and the API. Work that may be long
    or heavy belongs in ``execution="process"``."""
    total = sum(range(rows))
    log.info("report of %d rows, total %d", rows, total)
    return total
