"""FastAPI dependencies, published as ``Annotated`` aliases."""

from control.service import SchedulerService

from typing import Annotated

from fastapi import Depends, Request


def get_service(request: Request) -> SchedulerService:
    return request.app.state.service


ServiceDep = Annotated[SchedulerService, Depends(get_service)]
