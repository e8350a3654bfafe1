"""Waiting for something to become true, with a timeout, instead of sleeping a fixed time."""

import asyncio
import time
from collections.abc import Awaitable, Callable


def wait_until(
    predicate: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], object | Awaitable[object]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "",
):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(interval)
