"""ASGI middleware: body size and JSON text checks, audit trail, security headers, cross-site refusal."""

from __future__ import annotations

from control.services.audit import AuditService
from control.stores.base import AuditEntry
from control.text import first_unencodable

import asyncio
import json
import logging
import re
import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers
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


_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


async def _reply(send: Send, status: int, detail: str | list) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413, before the app reads them, and
    JSON bodies holding text that is not Unicode with 422.

    JSON may spell a lone surrogate as an escape (``"\\ud800"``), and the JSON decoder
    Starlette uses also lets the raw bytes of one through. Such a string cannot be encoded
    again: stored, it would fail every later write or answer that holds it. It is refused
    here, once for every route, before any of them sees it.
    """

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
        if _is_json(scope) and (problem := _not_unicode(b"".join(m.get("body", b"") for m in chunks))):
            await _reply(send, 422, [problem])
            return
        await self.app(scope, _replay(chunks, then=receive), send)


def _is_json(scope: Scope) -> bool:
    content_type = Headers(scope=scope).get("content-type", "").partition(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _not_unicode(body: bytes) -> dict | None:
    """FastAPI's error shape for a JSON body holding text that is not Unicode; None if fine."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {
            "type": "unicode_error",
            "loc": ["body"],
            "msg": f"the body is not valid UTF-8 (byte {exc.start})",
            "input": None,
        }
    if not _SURROGATE_ESCAPE.search(body):
        return None  # the common case: no escape that could decode to a lone surrogate
    try:
        where = first_unencodable(json.loads(text))
    except ValueError:
        return None  # not JSON at all: the route says so
    if where is None:
        return None  # only surrogate pairs, which are fine
    return {
        "type": "unicode_error",
        "loc": ["body", *where],
        "msg": "a string holds a lone surrogate (such as \\ud800), which is not Unicode text",
        "input": None,
    }


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

    def __init__(self, app: ASGIApp, *, store: AuditService):
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


class SameOriginMiddleware:
    """Refuses changes (POST, PUT, PATCH, DELETE) and WebSocket handshakes sent by pages of
    other sites.

    Any web page can make the browser send a POST to a loopback service (a ``no-cors``
    fetch, a form): with no token configured, or with the sign-in cookie, it would act.
    Browsers name the sending page's origin in ``Origin`` (on every such request; at least
    in ``Referer`` otherwise). A request whose origin is neither this service's own (the
    scheme and ``Host`` it was sent to) nor one of ``allowed_origins`` gets 403; the opaque
    origin ``null`` (sandboxed frames, files) is refused too. Programs (curl, httpx) send
    neither header and are not affected. ``Host`` itself is checked before this, by
    Starlette's ``TrustedHostMiddleware``, so a rebound DNS name cannot pass as our own.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: list[str]):
        self.app = app
        self.allowed = frozenset(_normal(origin) for origin in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" or (kind == "http" and scope["method"] in _CHANGES):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is None and (referer := headers.get("referer")) is not None:
                parts = urlsplit(referer)
                origin = f"{parts.scheme}://{parts.netloc}"
            if origin is not None and not self._accepts(_normal(origin), scope, headers):
                detail = f"refused a change sent from another site ({origin[:100]})"
                if kind == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": detail})
                else:
                    await _reply(send, 403, detail)
                return
        await self.app(scope, receive, send)

    def _accepts(self, origin: str, scope: Scope, headers: Headers) -> bool:
        scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
        own = _normal(f"{scheme}://{headers.get('host', '')}")
        return origin == own or origin in self.allowed


def _normal(origin: str) -> str:
    """An origin as browsers send it: lower case, without the scheme's default port."""
    origin = origin.strip().rstrip("/").lower()
    default_port = _DEFAULT_PORTS.get(origin.partition("://")[0])
    return origin.removesuffix(default_port) if default_port else origin
