"""What the services share: the session, the scheduler, the stores, the catalog, who is asking."""

from __future__ import annotations

from control.definitions.catalog import TaskCatalog
from control.engine.loop import ControlScheduler
from control.errors import StoreUnavailableError
from control.events import EventHub
from control.prediction import BackgroundPredictor, Predictor
from control.settings import Settings
from control.stores.base import StoredDefinition, Stores, Version

import asyncio
import datetime
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the token's name (``open`` without tokens) and the address."""

    name: str
    client: str | None


def utc(timestamp: float | None) -> datetime.datetime | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)


@dataclass
class Context:
    session: object
    scheduler: ControlScheduler
    stores: Stores
    catalog: TaskCatalog
    predictor: Predictor  # on the event loop, within small budgets
    background_predictor: BackgroundPredictor  # off it, for what may take long
    settings: Settings
    events: EventHub
    # Names of the session parameters set through the API (code may set others).
    api_parameters: set[str] = field(default_factory=set)
    # Changes are applied and stored one at a time, so the store's order is the session's.
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def audit_failures(self) -> int:
        return self.stores.audit.failed

    async def store_call(self, operation, *args, **kwargs):
        """Run a blocking store operation off the event loop; a failure is a 503."""
        try:
            return await asyncio.to_thread(operation, *args, **kwargs)
        except Exception as exc:
            raise StoreUnavailableError(
                f"the change could not be stored: {str(exc).splitlines()[0]}"
            ) from exc

    async def record(
        self,
        name: str,
        action: str,
        changes: dict,
        actor: Actor,
        *,
        reason: str | None = None,
        origin: str | None = None,
    ) -> Version:
        """Store ``name``'s definition as the catalog has it now, with a version entry."""
        stored: StoredDefinition | None = self.catalog.stored_form(name)
        version = Version(
            task_name=name,
            actor=actor.name,
            client=actor.client,
            action=action,
            changes=changes,
            reason=reason,
            origin=origin or self.catalog.origin(name),
            definition=stored.fields if stored else None,
        )
        saved = await self.store_call(self.stores.definitions.save, stored, version, name=name)
        self.events.publish(
            action, name, saved.created, {"changes": changes, "actor": actor.name, "reason": reason}
        )
        return saved
