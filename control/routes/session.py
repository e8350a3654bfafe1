"""Routes of the ``/session`` resource: the scheduler's state and its shutdown."""

from control.deps import ADMINS, READERS, ServiceDep
from control.schemas import Message, SessionPublic

from fastapi import APIRouter, status

router = APIRouter(prefix="/session", tags=["session"])


@router.get("", dependencies=READERS)
async def get_session(service: ServiceDep) -> SessionPublic:
    """Show the scheduler's state, uptime, task counts and configuration."""
    return service.session_info()


@router.post("/shutdown", status_code=status.HTTP_202_ACCEPTED, dependencies=ADMINS)
async def shutdown_session(service: ServiceDep) -> Message:
    """Stop the scheduler (running tasks are terminated) and then the server."""
    service.request_shutdown()
    return Message(detail="shutting down")
