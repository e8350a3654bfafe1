"""Routes of ``/auth/session``: browser sign-in with a token, kept as an HttpOnly cookie."""

from control.auth import TokenRegistry
from control.deps import READERS, IdentityDep
from control.errors import AuthenticationError
from control.websessions import COOKIE_NAME, CSRF_HEADER, WebSessions

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status
from pydantic import BaseModel, Field

router = APIRouter(prefix="/auth", tags=["auth"])


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class SignedIn(BaseModel):
    name: str
    role: str
    csrf_token: str | None = Field(
        None, description=f"Send it as {CSRF_HEADER} with every change made through the cookie"
    )


@router.post("/session")
async def sign_in(body: Annotated[SignIn, Body()], request: Request, response: Response) -> SignedIn:
    """Exchange a token for a session cookie (HttpOnly, SameSite=Strict) and a CSRF token."""
    registry: TokenRegistry = request.app.state.tokens
    identity = registry.identify(body.token)
    if identity is None:
        raise AuthenticationError("invalid token")
    sessions: WebSessions = request.app.state.web_sessions
    session_id, session = sessions.open(identity)
    response.set_cookie(
        COOKIE_NAME,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(sessions.ttl_seconds),
        path="/",
    )
    return SignedIn(name=identity.name, role=identity.role.name, csrf_token=session.csrf_token)


@router.get("/session", dependencies=READERS)
async def who_am_i(identity: IdentityDep) -> SignedIn:
    """Show who the request's credentials belong to."""
    return SignedIn(name=identity.name, role=identity.role.name)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(request: Request, response: Response) -> None:
    """End the browser session."""
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie is not None:
        request.app.state.web_sessions.close(cookie)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
