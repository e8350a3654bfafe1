"""DefinitionService: every definition made through the API as one document, exported and
imported (all or nothing), and the stored definitions that could not be loaded at start."""

from __future__ import annotations

from control.errors import InvalidInputError
from control.schemas.definitions import BrokenDefinition, DefinitionsDocument, ImportChange, ImportResult
from control.schemas.tasks import TaskDefinition, TaskFields
from control.services.catalog import TaskCatalog, diff
from control.services.common import Actor
from control.services.parameters import ParameterService
from control.services.tasks import TaskService

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

Apply = Callable[[Actor], Awaitable[object]] | None


class ImportRefusedError(InvalidInputError):
    """An import with errors: nothing was applied; ``result`` says what was wrong where."""

    kind = "import_error"

    def __init__(self, result: ImportResult):
        super().__init__("the document has errors; nothing was imported", field="document")
        self.result = result


class DefinitionService:
    def __init__(self, *, catalog: TaskCatalog, tasks: TaskService, parameters: ParameterService):
        self._catalog = catalog
        self._tasks = tasks
        self._parameters = parameters

    def broken(self) -> list[BrokenDefinition]:
        return [
            BrokenDefinition(name=b.name, origin=b.origin, reason=b.reason, definition=b.fields)
            for b in sorted(self._catalog.broken.values(), key=lambda b: b.name)
        ]

    def export(self) -> DefinitionsDocument:
        catalog = self._catalog
        return DefinitionsDocument(
            runtime_tasks=[d.model_dump(mode="json") for _, d in sorted(catalog.runtime.items())],
            code_task_edits={name: dict(edits) for name, edits in sorted(catalog.overrides.items()) if edits},
            parameters=self._parameters.values(),
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
            if apply is not None and change.action in ("create", "update"):
                await apply(actor)
        result.applied = True
        return result

    def _plan(self, document: DefinitionsDocument) -> list[tuple[ImportChange, Apply]]:
        plan = [self._plan_runtime(raw) for raw in document.runtime_tasks]
        plan += [self._plan_code(name, edits) for name, edits in document.code_task_edits.items()]
        current = self._parameters.values()
        for name, value in document.parameters.items():
            target = f"parameter:{name}"
            if name in current and current[name] == value:
                plan.append((ImportChange(target=target, action="unchanged"), None))
                continue
            change = ImportChange(
                target=target,
                action="update" if name in current else "create",
                changes={"value": [current.get(name), value]},
            )
            plan.append((change, lambda actor, name=name, value=value: self._parameters.set(name, value)))
        return plan

    def _plan_runtime(self, raw: dict[str, Any]) -> tuple[ImportChange, Apply]:
        target = str(raw.get("name", "?"))
        try:
            definition = TaskDefinition.model_validate(raw)
            self._catalog.check_definition(definition)
        except (ValidationError, InvalidInputError) as exc:
            return ImportChange(target=target, action="error", error=_message(exc)), None
        name = definition.name

        def apply(actor: Actor):
            return self._tasks.replace_runtime(definition, actor, action="import")

        if not self._catalog.exists(name):
            changes = diff({}, definition.model_dump(mode="json"))
            return ImportChange(target=name, action="create", changes=changes), apply
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

    def _plan_code(self, name: str, edits: dict[str, Any]) -> tuple[ImportChange, Apply]:
        if not self._catalog.exists(name) or self._catalog.origin(name) != "code":
            return ImportChange(
                target=name, action="error", error="no task of that name is defined in code"
            ), None
        try:
            wanted = TaskFields.model_validate(edits).changes()
            self._catalog.check_edit(name, wanted)
        except (ValidationError, InvalidInputError) as exc:
            return ImportChange(target=name, action="error", error=_message(exc)), None
        changes = diff(self._catalog.overrides.get(name, {}), wanted)
        if not changes:
            return ImportChange(target=name, action="unchanged"), None

        async def apply(actor: Actor) -> None:
            async with self._catalog.change(name, actor, "import") as change:
                change.reset()
                change.update(wanted)

        return ImportChange(target=name, action="update", changes=changes), apply


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(exc)
