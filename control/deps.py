"""FastAPI dependencies, published as ``Annotated`` aliases."""

from control.service import SchedulerService

from typing import Annotated

from fastapi import Depends, Request


async def get_service(request: Request) -> SchedulerService:
    # async: FastAPI would run a plain function in its thread pool, a thread hop per request.
    return request.app.state.service


ServiceDep = Annotated[SchedulerService, Depends(get_service)]
