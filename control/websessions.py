"""Browser sign-ins: a token exchanged for an HttpOnly cookie, with a CSRF token for changes."""

from __future__ import annotations

from control.auth import Identity

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE_NAME = "rcp_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class WebSession:
    identity: Identity
    csrf_token: str
    expires: float

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


class WebSessions:
    """Sessions kept in memory: a restart signs everyone out, which is the safe default."""

    def __init__(self, *, ttl_seconds: float, limit: int = 10_000):
        self._ttl = ttl_seconds
        self._limit = limit
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def open(self, identity: Identity) -> tuple[str, WebSession]:
        session_id = secrets.token_urlsafe(32)
        session = WebSession(identity, secrets.token_urlsafe(32), time.time() + self._ttl)
        with self._lock:
            self._drop_expired()
            if len(self._sessions) >= self._limit:
                # Oldest first: dicts keep insertion order.
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> WebSession | None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires < time.time():
                del self._sessions[session_id]
                return None
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _drop_expired(self) -> None:
        now = time.time()
        for key in [key for key, session in self._sessions.items() if session.expires < now]:
            del self._sessions[key]
