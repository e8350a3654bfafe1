"""DefinitionService: export and import of definitions, broken ones, session parameters, and
checking a condition before it is used."""

from __future__ import annotations

from control.conditions import canonical_text, parse_condition
from control.definitions.model import TaskDefinition, TaskFields, diff
from control.errors import InvalidInputError, ParameterNotFoundError
from control.prediction import Forecast
from control.schemas import (
    BrokenDefinition,
    ConditionChecked,
    DefinitionsDocument,
    ImportChange,
    ImportResult,
    ParameterList,
    ParameterPublic,
)
from control.services.context import Actor, Context, utc
from control.services.tasks import TaskService

import time
from typing import Any

from pydantic import ValidationError
from rocketry.core.parameters import Parameters

_PREVIEW_BUDGET = 0.5  # seconds a due-time preview may take


class ImportRefusedError(InvalidInputError):
    """An import with errors: nothing was applied; ``result`` says what was wrong where."""

    kind = "import_error"

    def __init__(self, result: ImportResult):
        super().__init__("the document has errors; nothing was imported", field="document")
        self.result = result


class DefinitionService:
    def __init__(self, context: Context, tasks: TaskService):
        self._ctx = context
        self._tasks = tasks
        self._catalog = context.catalog
        self._session = context.session

    # -- conditions --------------------------------------------------------------------

    async def check_condition(self, text: str, count: int) -> ConditionChecked:
        """Parse ``text`` (bounded in size, nesting and parts) and preview its due times off
        the event loop, giving up after ``_PREVIEW_BUDGET`` seconds (the answer says so)."""
        deadline = time.monotonic() + _PREVIEW_BUDGET
        condition = parse_condition(text, session=self._session, field="condition")
        forecast = Forecast([])
        if count:
            forecast = await self._ctx.background_predictor.next_runs(
                condition, like=None, now=time.time(), count=count, deadline=deadline
            )
        return ConditionChecked(
            condition=canonical_text(condition, session=self._session),
            next_runs=[utc(t) for t in forecast.times] if forecast.times is not None else None,
            complete=forecast.complete,
        )

    # -- broken definitions ------------------------------------------------------------

    def broken(self) -> list[BrokenDefinition]:
        return [
            BrokenDefinition(name=b.name, origin=b.origin, reason=b.reason, definition=b.fields)
            for b in sorted(self._catalog.broken.values(), key=lambda b: b.name)
        ]

    # -- session parameters ------------------------------------------------------------

    def parameters(self) -> ParameterList:
        items = [ParameterPublic(name=k, value=v) for k, v in sorted(self._json_parameters().items())]
        return ParameterList(data=items, count=len(items))

    def parameter(self, name: str) -> ParameterPublic:
        values = self._json_parameters()
        if name not in values:
            raise ParameterNotFoundError(f"Parameter '{name}' not found")
        return ParameterPublic(name=name, value=values[name])

    async def set_parameter(self, name: str, value: Any) -> ParameterPublic:
        async with self._ctx.write_lock:
            await self._ctx.store_call(self._ctx.stores.definitions.set_parameter, name, value)
            self._session.parameters[name] = value
            self._ctx.api_parameters.add(name)
        self._ctx.scheduler.wake()
        return ParameterPublic(name=name, value=value)

    async def delete_parameter(self, name: str) -> None:
        async with self._ctx.write_lock:
            if name not in self._ctx.api_parameters:
                raise ParameterNotFoundError(f"Parameter '{name}' not found")
            await self._ctx.store_call(self._ctx.stores.definitions.delete_parameter, name)
            remaining = {key: value for key, value in self._session.parameters.items() if key != name}
            self._session.parameters = Parameters(remaining)
            self._ctx.api_parameters.discard(name)
        self._ctx.scheduler.wake()

    def _json_parameters(self) -> dict[str, Any]:
        # Only what the API set; code may put objects of its own in the session's parameters.
        return {k: v for k, v in self._session.parameters.items() if k in self._ctx.api_parameters}

    # -- export and import -------------------------------------------------------------

    def export(self) -> DefinitionsDocument:
        catalog = self._catalog
        return DefinitionsDocument(
            runtime_tasks=[d.model_dump(mode="json") for _, d in sorted(catalog.runtime.items())],
            code_task_edits={name: dict(edits) for name, edits in sorted(catalog.overrides.items()) if edits},
            parameters=self._json_parameters(),
        )

    async def import_(self, document: DefinitionsDocument, actor: Actor, *, dry_run: bool) -> ImportResult:
        """Create or update what the document holds; tasks and parameters it does not name
        are left alone. With errors, nothing is applied."""
        plan = self._plan(document)
        result = ImportResult(dry_run=dry_run, applied=False, changes=[change for change, _ in plan])
        if any(change.action == "error" for change in result.changes):
            if dry_run:
                return result
            raise ImportRefusedError(result)
        if dry_run:
            return result
        for change, apply in plan:
            if change.action in ("create", "update"):
                await apply(actor)
        result.applied = True
        return result

    def _plan(self, document: DefinitionsDocument) -> list[tuple[ImportChange, Any]]:
        plan: list[tuple[ImportChange, Any]] = []
        for raw in document.runtime_tasks:
            plan.append(self._plan_runtime(raw))
        for name, edits in document.code_task_edits.items():
            plan.append(self._plan_code(name, edits))
        for name, value in document.parameters.items():
            current = self._json_parameters()
            if name in current and current[name] == value:
                plan.append((ImportChange(target=f"parameter:{name}", action="unchanged"), None))
            else:
                change = ImportChange(
                    target=f"parameter:{name}",
                    action="update" if name in current else "create",
                    changes={"value": [current.get(name), value]},
                )
                plan.append((change, lambda actor, name=name, value=value: self.set_parameter(name, value)))
        return plan

    def _plan_runtime(self, raw: dict[str, Any]) -> tuple[ImportChange, Any]:
        target = str(raw.get("name", "?"))
        try:
            definition = TaskDefinition.model_validate(raw)
            self._catalog.check(definition)
        except (ValidationError, InvalidInputError) as exc:
            return ImportChange(target=target, action="error", error=_message(exc)), None
        name = definition.name
        apply = lambda actor: self._tasks.replace_runtime(definition, actor, action="import")  # noqa: E731
        if name not in self._session:
            return ImportChange(
                target=name, action="create", changes=diff({}, definition.model_dump(mode="json"))
            ), apply
        if self._catalog.origin(name) != "runtime":
            return ImportChange(
                target=name, action="error", error="a task defined in code has this name"
            ), None
        current = self._catalog.runtime[name].model_dump(mode="json")
        wanted = definition.model_dump(mode="json")
        if wanted.get("execution") is None:
            wanted["execution"] = current.get("execution")
        changes = diff(current, wanted)
        return ImportChange(target=name, action="update" if changes else "unchanged", changes=changes), apply

    def _plan_code(self, name: str, edits: dict[str, Any]) -> tuple[ImportChange, Any]:
        if name not in self._session or self._catalog.origin(name) != "code":
            return ImportChange(
                target=name, action="error", error="no task of that name is defined in code"
            ), None
        try:
            fields = TaskFields.model_validate(edits)
            self._catalog.check_fields(self._session[name], fields.changes())
        except (ValidationError, InvalidInputError) as exc:
            return ImportChange(target=name, action="error", error=_message(exc)), None
        current = self._catalog.overrides.get(name, {})
        wanted = fields.changes()
        changes = diff(current, wanted)
        if not changes:
            return ImportChange(target=name, action="unchanged"), None

        async def apply(actor: Actor) -> None:
            await self._tasks.reset_task(name, actor)
            await self._tasks.update_task(name, TaskFields.model_validate(wanted), actor, action="import")

        return ImportChange(target=name, action="update", changes=changes), apply


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(exc)
