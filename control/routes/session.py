"""Routes of the ``/session`` resource: the scheduler's state and its shutdown."""

from control.deps import ADMINS, READERS, RuntimeDep
from control.schemas import Message, SessionPublic

from fastapi import APIRouter, status

router = APIRouter(prefix="/session", tags=["session"])


@router.get("", dependencies=READERS)
async def get_session(runtime: RuntimeDep) -> SessionPublic:
    """Show the scheduler's state, uptime, task counts and configuration."""
    return runtime.session_info()


@router.post("/shutdown", status_code=status.HTTP_202_ACCEPTED, dependencies=ADMINS)
async def shutdown_session(runtime: RuntimeDep) -> Message:
    """Stop the scheduler (running tasks are terminated) and then the server."""
    runtime.request_shutdown()
    return Message(detail="shutting down")
