"""FastAPI dependencies, published as ``Annotated`` aliases and per-role dependency lists.

The only module that reads ``app.state``: routes receive everything through these.
"""

from control.auth import OPEN_ACCESS, Identity, Role, TokenRegistry
from control.batching import BatchQueue
from control.errors import AuthenticationError, PermissionDeniedError
from control.services.assemble import Services
from control.services.audit import AuditService
from control.services.common import Actor
from control.services.conditions import ConditionService
from control.services.definitions import DefinitionService
from control.services.history import HistoryService
from control.services.parameters import ParameterService
from control.services.session import SessionService
from control.services.tasks import TaskService
from control.websessions import COOKIE_NAME, CSRF_HEADER, WebSessions

from typing import Annotated

from fastapi import Depends, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Declares the scheme in the OpenAPI schema (the "Authorize" button of /docs).
_bearer = HTTPBearer(auto_error=False, description="An API token: Authorization: Bearer <token>")


# async: FastAPI would run plain functions in its thread pool, a thread hop per request.
async def get_services(connection: HTTPConnection) -> Services:
    return connection.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_tasks(services: ServicesDep) -> TaskService:
    return services.tasks


async def get_definitions(services: ServicesDep) -> DefinitionService:
    return services.definitions


async def get_parameters(services: ServicesDep) -> ParameterService:
    return services.parameters


async def get_conditions(services: ServicesDep) -> ConditionService:
    return services.conditions


async def get_history(services: ServicesDep) -> HistoryService:
    return services.history


async def get_session(services: ServicesDep) -> SessionService:
    return services.session


async def get_audit(services: ServicesDep) -> AuditService:
    return services.audit


async def get_tokens(connection: HTTPConnection) -> TokenRegistry:
    return connection.app.state.tokens


async def get_web_sessions(connection: HTTPConnection) -> WebSessions:
    return connection.app.state.web_sessions


async def get_batch(connection: HTTPConnection) -> BatchQueue:
    return connection.app.state.batch


TokensDep = Annotated[TokenRegistry, Depends(get_tokens)]
WebSessionsDep = Annotated[WebSessions, Depends(get_web_sessions)]


async def get_identity(
    request: Request,
    tokens: TokensDep,
    sessions: WebSessionsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    """Who sent the request: a bearer token, or a browser session cookie (whose changes
    must carry its CSRF token). Everyone is admin when no token is configured."""
    if not tokens.enabled:
        identity = OPEN_ACCESS
    elif credentials is not None:
        identity = tokens.identify(credentials.credentials)
        if identity is None:
            raise AuthenticationError("invalid bearer token")
    elif (cookie := request.cookies.get(COOKIE_NAME)) is not None:
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
    tokens: TokenRegistry = websocket.app.state.tokens
    identity: Identity | None = None
    reason = "this needs a token"
    if not tokens.enabled:
        identity = OPEN_ACCESS
    elif (header := websocket.headers.get("authorization")) is not None:
        scheme, _, token = header.partition(" ")
        identity = tokens.identify(token.strip()) if scheme.lower() == "bearer" else None
        reason = "invalid bearer token"
    elif (cookie := websocket.cookies.get(COOKIE_NAME)) is not None:
        session = websocket.app.state.web_sessions.get(cookie)
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
ParametersDep = Annotated[ParameterService, Depends(get_parameters)]
ConditionsDep = Annotated[ConditionService, Depends(get_conditions)]
HistoryDep = Annotated[HistoryService, Depends(get_history)]
SessionDep = Annotated[SessionService, Depends(get_session)]
AuditDep = Annotated[AuditService, Depends(get_audit)]
BatchDep = Annotated[BatchQueue, Depends(get_batch)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
ActorDep = Annotated[Actor, Depends(get_actor)]
READERS = [Depends(require(Role.read))]
OPERATORS = [Depends(require(Role.operate))]
ADMINS = [Depends(require(Role.admin))]
