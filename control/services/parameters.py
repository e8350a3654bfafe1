"""ParameterService: session parameters, the values Rocketry passes to every task function with a
parameter of that name; those set through the API are kept, and applied again at start."""

from __future__ import annotations

from control.engine.loop import ControlScheduler
from control.errors import ParameterNotFoundError
from control.schemas.parameters import ParameterList, ParameterPublic
from control.services.catalog import TaskCatalog
from control.services.common import store_call
from control.stores.base import DefinitionStore

from typing import Any

from rocketry.core.parameters import Parameters


class ParameterService:
    def __init__(
        self,
        session,
        scheduler: ControlScheduler,
        *,
        catalog: TaskCatalog,
        definitions: DefinitionStore,
        stored: dict[str, Any],
    ):
        self._session = session
        self._scheduler = scheduler
        self._lock = catalog.lock  # one change at a time, tasks and parameters alike
        self._definitions = definitions
        # Names of the session parameters set through the API (code may set others).
        self._ours: set[str] = set(stored)
        session.parameters.update(stored)

    def values(self) -> dict[str, Any]:
        """Only what the API set; code may put objects of its own in the session's parameters."""
        return {k: v for k, v in self._session.parameters.items() if k in self._ours}

    def list(self) -> ParameterList:
        items = [ParameterPublic(name=k, value=v) for k, v in sorted(self.values().items())]
        return ParameterList(data=items, count=len(items))

    def get(self, name: str) -> ParameterPublic:
        values = self.values()
        if name not in values:
            raise ParameterNotFoundError(f"Parameter '{name}' not found")
        return ParameterPublic(name=name, value=values[name])

    async def set(self, name: str, value: Any) -> ParameterPublic:
        async with self._lock:
            await store_call(self._definitions.set_parameter, name, value)
            self._session.parameters[name] = value
            self._ours.add(name)
        self._scheduler.wake()
        return ParameterPublic(name=name, value=value)

    async def follow(self) -> None:
        """Take the session parameters another replica stored."""
        _, stored = await store_call(self._definitions.load)
        async with self._lock:
            kept = {key: value for key, value in self._session.parameters.items() if key not in self._ours}
            self._session.parameters = Parameters(kept | stored)
            self._ours = set(stored)
        self._scheduler.wake()

    async def delete(self, name: str) -> None:
        async with self._lock:
            if name not in self._ours:
                raise ParameterNotFoundError(f"Parameter '{name}' not found")
            await store_call(self._definitions.delete_parameter, name)
            remaining = {key: value for key, value in self._session.parameters.items() if key != name}
            self._session.parameters = Parameters(remaining)
            self._ours.discard(name)
        self._scheduler.wake()
