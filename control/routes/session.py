"""Routes of the ``/session`` resource: the scheduler's state and its shutdown."""

from control.deps import ADMINS, READERS, SessionDep
from control.schemas.common import Message
from control.schemas.session import SessionPublic

from fastapi import APIRouter, status

router = APIRouter(prefix="/session", tags=["session"])


@router.get("", dependencies=READERS)
async def get_session(session: SessionDep) -> SessionPublic:
    """Show the scheduler's state, uptime, task counts and configuration."""
    return session.info()


@router.post("/shutdown", status_code=status.HTTP_202_ACCEPTED, dependencies=ADMINS)
async def shutdown_session(session: SessionDep) -> Message:
    """Stop the scheduler (running tasks are terminated) and then the server."""
    session.request_shutdown()
    return Message(detail="shutting down")
