"""The ``/health`` route: 200 once the server and the scheduler are both up, else 503."""

from control.deps import SessionDep
from control.schemas.session import HealthPublic

from fastapi import APIRouter
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"model": HealthPublic, "description": "Not serving"}})
async def get_health(session: SessionDep) -> HealthPublic:
    """Tell whether the scheduler runs and its log store writes."""
    health = session.health()
    if health.status == "unavailable":
        return JSONResponse(health.model_dump(), status_code=503)
    return health
