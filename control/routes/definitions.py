"""Routes of ``/definitions``: export, import, and the definitions that could not be loaded."""

from control.deps import ADMINS, READERS, ActorDep, DefinitionsDep
from control.schemas.definitions import BrokenDefinition, DefinitionsDocument, ImportResult

from typing import Annotated

from fastapi import APIRouter, Query

router = APIRouter(prefix="/definitions", tags=["definitions"])


@router.get("", dependencies=ADMINS)
async def export_definitions(definitions: DefinitionsDep) -> DefinitionsDocument:
    """Every definition made through the API, as one document to back up or import elsewhere."""
    return definitions.export()


@router.post(
    "/import", dependencies=ADMINS, responses={422: {"model": ImportResult, "description": "Errors"}}
)
async def import_definitions(
    document: DefinitionsDocument,
    definitions: DefinitionsDep,
    actor: ActorDep,
    dry_run: Annotated[bool, Query(description="Only say what would change")] = False,
) -> ImportResult:
    """Create or update the tasks and parameters of a document; with any error, nothing is applied."""
    return await definitions.import_(document, actor, dry_run=dry_run)


@router.get("/broken", dependencies=READERS)
async def list_broken(definitions: DefinitionsDep) -> list[BrokenDefinition]:
    """Stored definitions that could not be loaded at start, with the reason."""
    return definitions.broken()
