"""Routes of ``/session/parameters``: the values Rocketry passes to tasks that ask for them by name."""

from control.deps import ADMINS, READERS, ParametersDep
from control.schemas.common import Message
from control.schemas.parameters import ParameterList, ParameterPublic, ParameterValue

from typing import Annotated

from fastapi import APIRouter, Body, Path, status

router = APIRouter(prefix="/session/parameters", tags=["parameters"])

ParameterName = Annotated[
    str, Path(max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="A Python identifier")
]
NOT_FOUND = {404: {"model": Message, "description": "No parameter has that name"}}


@router.get("", dependencies=READERS)
async def list_parameters(parameters: ParametersDep) -> ParameterList:
    """Session parameters set through the API."""
    return parameters.list()


@router.get("/{name}", responses=NOT_FOUND, dependencies=READERS)
async def get_parameter(name: ParameterName, parameters: ParametersDep) -> ParameterPublic:
    """Show one session parameter."""
    return parameters.get(name)


@router.put("/{name}", dependencies=ADMINS)
async def set_parameter(
    name: ParameterName, body: Annotated[ParameterValue, Body()], parameters: ParametersDep
) -> ParameterPublic:
    """Set a session parameter (kept across restarts); tasks with a parameter of that name receive it."""
    return await parameters.set(name, body.value)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND, dependencies=ADMINS)
async def delete_parameter(name: ParameterName, parameters: ParametersDep) -> None:
    """Remove a session parameter."""
    await parameters.delete(name)
