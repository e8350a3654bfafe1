"""Routes of ``/session/parameters``: the values Rocketry passes to tasks that ask for them by name."""

from control.deps import ADMINS, READERS, DefinitionsDep
from control.schemas import Message, ParameterList, ParameterPublic, ParameterValue

from typing import Annotated

from fastapi import APIRouter, Body, Path, status

router = APIRouter(prefix="/session/parameters", tags=["parameters"])

ParameterName = Annotated[
    str, Path(max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="A Python identifier")
]
NOT_FOUND = {404: {"model": Message, "description": "No parameter has that name"}}


@router.get("", dependencies=READERS)
async def list_parameters(definitions: DefinitionsDep) -> ParameterList:
    """Session parameters set through the API."""
    return definitions.parameters()


@router.get("/{name}", responses=NOT_FOUND, dependencies=READERS)
async def get_parameter(name: ParameterName, definitions: DefinitionsDep) -> ParameterPublic:
    """Show one session parameter."""
    return definitions.parameter(name)


@router.put("/{name}", dependencies=ADMINS)
async def set_parameter(
    name: ParameterName, body: Annotated[ParameterValue, Body()], definitions: DefinitionsDep
) -> ParameterPublic:
    """Set a session parameter (kept across restarts); tasks with a parameter of that name receive it."""
    return await definitions.set_parameter(name, body.value)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND, dependencies=ADMINS)
async def delete_parameter(name: ParameterName, definitions: DefinitionsDep) -> None:
    """Remove a session parameter."""
    await definitions.delete_parameter(name)
