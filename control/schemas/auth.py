"""Models of the ``/auth/session`` resource: browser sign-in with a token."""

from __future__ import annotations

from control.websessions import CSRF_HEADER

from pydantic import BaseModel, Field


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class SignedIn(BaseModel):
    name: str
    role: str
    csrf_token: str | None = Field(
        None, description=f"Send it as {CSRF_HEADER} with every change made through the cookie"
    )
