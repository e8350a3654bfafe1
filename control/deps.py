"""FastAPI dependencies, published as ``Annotated`` aliases and per-role dependency lists."""

from control.auth import OPEN_ACCESS, Identity, Role, TokenRegistry
from control.errors import AuthenticationError, PermissionDeniedError
from control.services.context import Actor
from control.services.definitions import DefinitionService
from control.services.runtime import RuntimeService
from control.services.tasks import TaskService
from control.websessions import COOKIE_NAME, CSRF_HEADER, WebSessions

from typing import Annotated

from fastapi import Depends, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Declares the scheme in the OpenAPI schema (the "Authorize" button of /docs).
_bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer <token>")


# async: FastAPI would run plain functions in its thread pool, a thread hop per request.
async def get_tasks(request: Request) -> TaskService:
    return request.app.state.services.tasks


async def get_definitions(request: Request) -> DefinitionService:
    return request.app.state.services.definitions


async def get_runtime(request: Request) -> RuntimeService:
    return request.app.state.services.runtime


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


async def get_actor(request: Request, identity: Annotated[Identity, Depends(get_identity)]) -> Actor:
    return Actor(name=identity.name, client=request.client.host if request.client else None)


async def websocket_identity(websocket: WebSocket, role: Role) -> Identity | None:
    """The same tokens as HTTP, checked before a WebSocket is accepted; None after refusing it.

    A browser sends its cookie on a WebSocket from any site; ``SameOriginMiddleware`` has
    already refused handshakes from other sites' pages."""
    app = websocket.app
    registry: TokenRegistry = app.state.tokens
    identity: Identity | None = None
    reason = "this needs a token"
    if not registry.enabled:
        identity = OPEN_ACCESS
    elif (header := websocket.headers.get("authorization")) is not None:
        scheme, _, token = header.partition(" ")
        identity = registry.identify(token.strip()) if scheme.lower() == "bearer" else None
        reason = "invalid bearer token"
    elif (cookie := websocket.cookies.get(COOKIE_NAME)) is not None:
        session = app.state.web_sessions.get(cookie)
        if session is not None:
            identity = session.identity
        reason = "the sign-in has expired; sign in again"
    if identity is not None and not identity.allows(role):
        reason, identity = (
            f"token '{identity.name}' has role '{identity.role.name}'; this needs '{role.name}'",
            None,
        )
    if identity is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=reason)
    return identity


def require(role: Role):
    async def check(identity: Annotated[Identity, Depends(get_identity)]) -> Identity:
        if not identity.allows(role):
            raise PermissionDeniedError(
                f"token '{identity.name}' has role '{identity.role.name}'; this needs '{role.name}'"
            )
        return identity

    return check


TasksDep = Annotated[TaskService, Depends(get_tasks)]
DefinitionsDep = Annotated[DefinitionService, Depends(get_definitions)]
RuntimeDep = Annotated[RuntimeService, Depends(get_runtime)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
ActorDep = Annotated[Actor, Depends(get_actor)]
READERS = [Depends(require(Role.read))]
OPERATORS = [Depends(require(Role.operate))]
ADMINS = [Depends(require(Role.admin))]
