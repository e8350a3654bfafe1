"""The API as the command line sees it: requests with the token, answers checked, errors turned
into one line and an exit code, and Server-Sent Events streams read as events."""

from control.cli.exits import CliError, ExitCode, exit_code_of

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

_REASONS = {401: "unauthorised", 403: "forbidden", 404: "not found", 409: "conflict", 422: "invalid"}


class ApiError(CliError):
    """An answer with an error status; ``body`` is its JSON (None if it was not JSON)."""

    def __init__(self, response: httpx.Response):
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = None
        self.status = response.status_code
        reason = _REASONS.get(self.status, response.reason_phrase.lower() or "error")
        detail = _detail(self.body) or response.text.strip()[:200]
        super().__init__(f"{reason} ({self.status}): {detail}", exit_code_of(self.status))


def _detail(body: Any) -> str:
    """The API's ``detail``: a message, or FastAPI's list of validation errors in one line."""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, list):
        return "; ".join(_validation_error(error) for error in detail if isinstance(error, dict))
    return str(detail) if detail is not None else ""


def _validation_error(error: dict) -> str:
    # FastAPI's ``loc`` starts with where the value was (body, query, path); the rest is the field.
    location = [str(part) for part in error.get("loc", [])[1:]]
    return f"{'.'.join(location)}: {error.get('msg', '')}" if location else str(error.get("msg", ""))


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its name (``event:``), its data read as JSON, and its id."""

    kind: str
    data: Any
    id: str | None


def read_events(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a Server-Sent Events stream's lines (comments, the keep-alives, skipped)."""
    kind, data, event_id = "message", [], None
    for line in lines:
        if not line:
            if data:
                yield Event(kind, json.loads("\n".join(data)), event_id)
            kind, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


class ApiClient:
    """One connection pool to the service at ``url``, sending ``token`` as a bearer token."""

    def __init__(self, url: str, token: str | None, timeout: float):
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer; an error status raises ApiError, no answer at all CliError (unreachable)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise ApiError(response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    @contextmanager
    def stream(
        self, path: str, *, params: Any = None, read_timeout: float | None = None
    ) -> Iterator[Iterator[Event]]:
        """The events of a streaming route, read as they come. By the time this is entered the
        service has answered, so for ``/events`` the subscription exists: nothing that
        happens afterwards is missed. ``read_timeout`` (None: wait for ever) bounds the wait
        for each line; idle streams get a keep-alive line every 15 s."""
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise ApiError(response)
                yield read_events(response.iter_lines())
        except httpx.ReadTimeout:
            raise  # the caller set read_timeout, and decides what waiting too long means
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: httpx.TransportError) -> CliError:
        reason = str(exc) or type(exc).__name__
        return CliError(f"cannot reach the service at {self.url} ({reason})", ExitCode.UNREACHABLE)
