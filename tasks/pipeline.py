"""A three-step pipeline: each step starts after the previous one succeeded."""

import logging
import os

from rocketry import Grouper

group = Grouper()
log = logging.getLogger(__name__)


@group.task("every 5 minutes", execution="process")
def extract():
    """Runs in its own process, as heavy work should."""
    log.info("extracting in process %d", os.getpid())


@group.task("after task 'extract'", execution="thread")
def transform():
    """Starts when extract has succeeded."""
    log.info("transforming")


@group.task("after task 'transform'", execution="async")
async def load():
    """Starts when transform has succeeded."""
    log.info("loading")
