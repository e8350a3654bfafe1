"""The FastAPI application: routers, error handlers and middleware over the service layer."""

from control.auth import TokenRegistry
from control.batching import BatchQueue
from control.handlers import add_error_handlers
from control.middleware import (
    AuditMiddleware,
    BodyLimitMiddleware,
    SameOriginMiddleware,
    SecurityHeadersMiddleware,
)
from control.routes import (
    audit,
    auth,
    conditions,
    dashboard,
    definitions,
    events,
    health,
    logs,
    parameters,
    session,
    tasks,
)
from control.routes import batch as batch_routes
from control.schemas.common import Message
from control.services.assemble import Services
from control.settings import Settings
from control.websessions import WebSessions

import contextlib

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

# Answers any route may give, documented once for all of them.
COMMON_RESPONSES = {
    401: {"model": Message, "description": "No valid token"},
    403: {"model": Message, "description": "The token's role does not allow it, or a CSRF token is missing"},
    413: {"model": Message, "description": "The request body is too large"},
}
ROUTERS = (
    tasks.router,
    logs.router,
    parameters.router,
    session.router,
    definitions.router,
    conditions.router,
    events.router,
    audit.router,
    auth.router,
)


def create_app(
    services: Services, *, settings: Settings, tokens: TokenRegistry, batch: BatchQueue | None = None
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        async with services.running():
            yield

    docs = settings.docs
    app = FastAPI(
        lifespan=lifespan,
        title="Rocketry control plane",
        summary="Run, watch and change the tasks of a running Rocketry scheduler.",
        version="0.1.0",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.services = services
    app.state.tokens = tokens
    app.state.web_sessions = WebSessions(ttl_seconds=settings.web_session_hours * 3600)
    app.state.batch = batch
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, responses=COMMON_RESPONSES)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC), name="static")
    if batch is not None:
        app.include_router(batch_routes.router)
    # Added innermost first; the audit trail, outermost, sees every change, refused ones too.
    # Not FastAPI's max_body_size: its 413 is plain text when the length is declared.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
        )
    app.add_middleware(SameOriginMiddleware, allowed_origins=settings.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    # A name other than ours in Host is a rebound DNS name (or a mistake): refused first.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.answered_hosts(), www_redirect=False)
    app.add_middleware(AuditMiddleware, store=services.audit)
    return app
