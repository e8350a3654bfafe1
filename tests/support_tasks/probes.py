"""Tasks with known behaviour: quick, failing, slow in each execution, dying processes."""

import asyncio
import os
import time
from typing import Annotated

from pydantic import Field
from rocketry import Grouper
from rocketry.args import TerminationFlag
from rocketry.exc import TaskTerminationException

group = Grouper()


@group.task(execution="async")
async def quick(n: int = 1):
    """Returns at once."""
    return n * 2


@group.task(execution="async")
async def failing():
    """Always fails."""
    raise ValueError("boom from the failing task")


@group.task(execution="async")
async def slow_async():
    await asyncio.sleep(120)


@group.task(execution="thread")
def slow_thread(flag=TerminationFlag()):
    for _ in range(1200):
        if flag.wait(0.1):
            raise TaskTerminationException()


@group.task(execution="process")
def slow_process():
    time.sleep(120)


@group.task(execution="process")
def quick_process():
    return None


@group.task(execution="process")
def exits_hard():
    os._exit(3)


@group.task(execution="async")
async def upstream():
    return None


@group.task("after task 'upstream'", execution="async")
async def downstream():
    return None


@group.task(execution="thread")
def stubborn_thread():
    """Ignores termination: a thread cannot be killed."""
    for _ in range(1200):
        time.sleep(0.1)


@group.task(execution="process")
def stubborn_process():
    """Ignores SIGTERM, so terminating it takes a SIGKILL."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(120)


@group.task(execution="process")
def short_process(seconds: float = 0.5):
    time.sleep(seconds)


@group.task(execution="async")
async def nap(seconds: float = 0.5):
    """Takes a moment, for the overlap policies."""
    await asyncio.sleep(seconds)


def _chatter(lines: int, fail: bool) -> None:
    import logging
    import sys

    for i in range(lines):
        print(f"line {i}")
    logging.getLogger("tests.chatty").warning("a warning from the task")
    print("to stderr", file=sys.stderr)
    if fail:
        raise RuntimeError("chatty failed")


@group.task(execution="async")
async def chatty(lines: int = 3, fail: bool = False):
    _chatter(lines, fail)


@group.task(execution="thread")
def chatty_thread(lines: int = 3, fail: bool = False):
    _chatter(lines, fail)


@group.task(execution="process")
def chatty_process(lines: int = 3, fail: bool = False):
    _chatter(lines, fail)


@group.task(execution="async")
async def ticker(count: int = 5, pause: float = 0.2):
    for i in range(count):
        print(f"tick {i}", flush=True)
        await asyncio.sleep(pause)


@group.task(execution="async")
async def unencodable():
    """Prints, logs and raises text that UTF-8 cannot encode (lone surrogates)."""
    import logging

    print("bad \ud800 output")
    logging.getLogger("tests.unencodable").warning("bad \udcff log")
    raise ValueError("bad \ud800 error")


@group.task(execution="async")
async def typed(
    count: Annotated[int, Field(ge=0, le=100)] = 1,
    ratio: float = 0.5,
    label: str = "x",
    tags: list[str] | None = None,
    anything=None,
):
    """Parameters with annotations (and bounds) the API checks before a run."""
    return {"count": count, "ratio": ratio, "label": label, "tags": tags, "anything": anything}


@group.task(execution="process")
def spawner(seconds: float = 120):
    """Starts a shell that starts a sleep, then waits: three generations of processes."""
    import subprocess

    subprocess.Popen(["sh", "-c", "sleep 40"])
    time.sleep(seconds)


@group.task(execution="process")
def leaves_a_child():
    """Starts a sleep and returns at once, leaving it behind."""
    import subprocess

    subprocess.Popen(["sleep", "40"])


@group.task(execution="process")
def slow_to_exit():
    """On SIGTERM it closes its files (the scheduler sees its end coming) and exits 0.3 s later:
    the moment between the two, widened."""
    import signal

    def leave(*_):
        os.closerange(3, 4096)
        time.sleep(0.3)
        os._exit(0)

    signal.signal(signal.SIGTERM, leave)
    time.sleep(120)
