"""ASGI middleware: request size limit, audit trail, security headers."""

from __future__ import annotations

from control.audit import AuditEntry, SQLAuditStore

import asyncio
import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The interactive docs load their scripts from a CDN; every other page is the service's own.
_DOCS_PATHS = ("/docs", "/redoc")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_CSP = (
    b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413, before the app reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is over the limit of {self.max_bytes} bytes"
        declares_body = False
        for name, value in scope["headers"]:
            if name == b"transfer-encoding":
                declares_body = True
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await _reply(send, 413, too_large)
                    return
                declares_body = declared > 0
        if not declares_body:
            # Nothing to count (a GET, or an empty body): no buffering on the hot path.
            await self.app(scope, receive, send)
            return
        # Read what comes (chunked bodies declare no length) up to the limit, then replay it.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _reply(send, 413, too_large)
                return
            chunks.append(message)
            more = message.get("more_body", False)
        await self.app(scope, _replay(chunks, then=receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class AuditMiddleware:
    """Records every request that changes something (POST, PUT, PATCH, DELETE) and how it
    ended, after the response is sent; the write happens off the event loop."""

    def __init__(self, app: ASGIApp, *, store: SQLAuditStore):
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _CHANGES:
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._record(scope, status)

    def _record(self, scope: Scope, status: int) -> None:
        identity = scope.get("state", {}).get("identity")
        route = scope.get("route")
        client = scope.get("client")
        entry = AuditEntry(
            created=time.time(),
            actor=identity.name if identity is not None else "anonymous",
            client=client[0] if client else None,
            method=scope["method"],
            route=getattr(route, "path", scope["path"])[:200],
            task=(scope.get("path_params") or {}).get("name"),
            status=status,
        )
        asyncio.get_running_loop().run_in_executor(None, self.store.record, entry)


class SecurityHeadersMiddleware:
    """Adds headers that keep browsers from sniffing, framing or leaking the service's pages."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(_SECURITY_HEADERS)
        if not scope["path"].startswith(_DOCS_PATHS):
            headers.append((b"content-security-policy", _CSP))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
