"""FastAPI dependencies, published as ``Annotated`` aliases and per-role dependency lists."""

from control.auth import OPEN_ACCESS, Identity, Role, TokenRegistry
from control.errors import AuthenticationError, PermissionDeniedError
from control.service import SchedulerService
from control.websessions import COOKIE_NAME, CSRF_HEADER, WebSessions

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Declares the scheme in the OpenAPI schema (the "Authorize" button of /docs).
_bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer <token>")


async def get_service(request: Request) -> SchedulerService:
    # async: FastAPI would run a plain function in its thread pool, a thread hop per request.
    return request.app.state.service


async def get_identity(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Identity:
    """Who sent the request: a bearer token, or a browser session cookie (whose changes
    must carry its CSRF token). Everyone is admin when no token is configured."""
    registry: TokenRegistry = request.app.state.tokens
    if not registry.enabled:
        identity = OPEN_ACCESS
    elif credentials is not None:
        identity = registry.identify(credentials.credentials)
        if identity is None:
            raise AuthenticationError("invalid bearer token")
    elif (cookie := request.cookies.get(COOKIE_NAME)) is not None:
        sessions: WebSessions = request.app.state.web_sessions
        session = sessions.get(cookie)
        if session is None:
            raise AuthenticationError("the sign-in has expired; sign in again")
        if request.method not in _SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            raise PermissionDeniedError(f"a change from a browser session needs its {CSRF_HEADER} header")
        identity = session.identity
    else:
        raise AuthenticationError("this needs a token: send 'Authorization: Bearer <token>'")
    request.state.identity = identity
    return identity


def require(role: Role):
    async def check(identity: Annotated[Identity, Depends(get_identity)]) -> Identity:
        if not identity.allows(role):
            raise PermissionDeniedError(
                f"token '{identity.name}' has role '{identity.role.name}'; this needs '{role.name}'"
            )
        return identity

    return check


ServiceDep = Annotated[SchedulerService, Depends(get_service)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
READERS = [Depends(require(Role.read))]
OPERATORS = [Depends(require(Role.operate))]
ADMINS = [Depends(require(Role.admin))]
