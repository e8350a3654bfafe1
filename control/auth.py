"""API tokens and roles: how a request proves who it is, and what each role may do.

Tokens are random strings handed to people and programs; the service keeps only their
SHA-256 digests (a token carries 256 random bits, so a fast hash is enough) and compares
digests in constant time. Roles are ordered: ``read`` < ``operate`` < ``admin``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

TOKEN_PREFIX = "rcp_"
DIGEST_PREFIX = "sha256:"


class Role(enum.IntEnum):
    read = 1  # every GET, the event stream
    operate = 2  # run, terminate, disable, enable
    admin = 3  # create, edit, delete, import, session parameters, shutdown


class TokenSpec(BaseModel):
    """One configured token: a name for the audit trail, a role, and the token's digest."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    digest: str = Field(description="sha256:<64 hex digits> of the token")

    @field_validator("role", mode="before")
    @classmethod
    def _role_by_name(cls, value):
        if isinstance(value, str):
            try:
                return Role[value]
            except KeyError:
                raise ValueError(f"role must be one of {', '.join(r.name for r in Role)}") from None
        return value

    @field_validator("digest")
    @classmethod
    def _is_a_digest(cls, value: str) -> str:
        hexpart = value.removeprefix(DIGEST_PREFIX)
        if not value.startswith(DIGEST_PREFIX) or len(hexpart) != 64:
            raise ValueError("digest must be 'sha256:' and 64 hex digits (see python -m control.tokens)")
        int(hexpart, 16)
        return value


@dataclass(frozen=True)
class Identity:
    """Who made a request: a token's name and role, or ``open`` when no token is configured."""

    name: str
    role: Role

    def allows(self, needed: Role) -> bool:
        return self.role >= needed


OPEN_ACCESS = Identity(name="open", role=Role.admin)


def digest(token: str) -> str:
    return DIGEST_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def load_token_file(path: Path) -> list[TokenSpec]:
    """A JSON list of ``{"name", "role", "digest"}`` objects (``python -m control.tokens``)."""
    return [TokenSpec.model_validate(item) for item in json.loads(path.read_text())]


class TokenRegistry:
    """The configured tokens. Empty means open access, which the service allows on loopback only."""

    def __init__(self, specs: list[TokenSpec]):
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"token names must be unique: {', '.join(duplicates)}")
        self._specs = list(specs)

    @property
    def enabled(self) -> bool:
        return bool(self._specs)

    def identify(self, token: str) -> Identity | None:
        presented = digest(token).encode()
        found = None
        for spec in self._specs:
            # Every digest is compared, so the time taken tells nothing about which matched.
            if hmac.compare_digest(presented, spec.digest.encode()):
                found = spec
        return Identity(name=found.name, role=found.role) if found else None


class UnsafeBindError(ValueError):
    """Asked to listen beyond loopback with no token configured."""


def check_exposure(host: str, registry: TokenRegistry) -> None:
    """Refuse to serve an open API anywhere but on loopback."""
    if registry.enabled or is_loopback(host):
        return
    raise UnsafeBindError(
        f"refusing to listen on {host} without API tokens: anyone who can reach it could run "
        "code here. Configure tokens (python -m control.tokens) or listen on 127.0.0.1"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere
