"""What the services share: who asks for a change, and how a blocking store call is made."""

from __future__ import annotations

from control.errors import StoreUnavailableError

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the token's name (``open`` without tokens) and the address."""

    name: str
    client: str | None


async def store_call(operation, *args, **kwargs):
    """Run a blocking store operation off the event loop; a failure is a 503 that says why."""
    try:
        return await asyncio.to_thread(operation, *args, **kwargs)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailableError(f"the change could not be stored: {first}") from exc
