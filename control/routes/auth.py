"""Routes of ``/auth/session``: browser sign-in with a token, kept as an HttpOnly cookie."""

from control.deps import READERS, IdentityDep, TokensDep, WebSessionsDep
from control.errors import AuthenticationError
from control.schemas.auth import SignedIn, SignIn
from control.websessions import COOKIE_NAME

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/session")
async def sign_in(
    body: Annotated[SignIn, Body()],
    request: Request,
    response: Response,
    tokens: TokensDep,
    sessions: WebSessionsDep,
) -> SignedIn:
    """Exchange a token for a session cookie (HttpOnly, SameSite=Strict) and a CSRF token."""
    identity = tokens.identify(body.token)
    if identity is None:
        raise AuthenticationError("invalid token")
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
async def sign_out(request: Request, response: Response, sessions: WebSessionsDep) -> None:
    """End the browser session."""
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie is not None:
        sessions.close(cookie)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
