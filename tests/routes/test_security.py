"""Tokens, roles, browser sessions, the audit trail and the safe defaults, through the real app."""

from control.auth import Role, TokenRegistry, TokenSpec, check_exposure, digest

import json
import subprocess
import sys

import pytest

from tests.utils.fixtures import make_settings, start_service, stop_service
from tests.utils.service_process import REPO
from tests.utils.waiting import async_wait_until

TOKENS = {"reader": "rcp_read-secret", "operator": "rcp_operate-secret", "boss": "rcp_admin-secret"}
ROLES = {"reader": "read", "operator": "operate", "boss": "admin"}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture
async def secured(tmp_path):
    specs = [TokenSpec(name=n, role=ROLES[n], digest=digest(t)) for n, t in TOKENS.items()]
    env, serving = await start_service(make_settings(tmp_path, tokens=specs))
    try:
        yield env
    finally:
        await stop_service(env, serving)


async def test_no_or_wrong_token_is_401_with_a_json_body(secured):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await secured.client.get("/tasks", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"]


async def test_each_role_gets_what_it_may_and_403_for_the_rest(secured):
    c = secured.client
    assert (await c.get("/tasks", headers=bearer("reader"))).status_code == 200
    refused = await c.post("/tasks/quick/run", headers=bearer("reader"))
    assert refused.status_code == 403
    assert refused.json() == {"detail": "token 'reader' has role 'read'; this needs 'operate'"}
    assert (await c.post("/tasks/quick/run", headers=bearer("operator"))).status_code == 202
    assert (await c.post("/tasks/quick/disable", headers=bearer("operator"))).status_code == 200
    assert (
        await c.patch("/tasks/quick", json={"priority": 2}, headers=bearer("operator"))
    ).status_code == 403
    assert (await c.post("/session/shutdown", headers=bearer("operator"))).status_code == 403
    assert (await c.get("/audit", headers=bearer("operator"))).status_code == 403
    assert (await c.patch("/tasks/quick", json={"priority": 2}, headers=bearer("boss"))).status_code == 200
    assert (await c.get("/audit", headers=bearer("boss"))).status_code == 200
    assert secured.scheduler.is_ready


async def test_the_event_stream_and_run_output_need_a_reader(secured):
    for path in ("/events", "/tasks/quick/runs/r1/output"):
        response = await secured.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"


async def test_health_needs_no_token_and_tells_no_error_text(secured):
    response = await secured.client.get("/health")
    assert response.status_code == 200
    assert "last_error" not in response.json()["store"]


async def test_browser_session_uses_a_strict_httponly_cookie_and_csrf(secured):
    c = secured.client
    assert (await c.post("/auth/session", json={"token": "wrong"})).status_code == 401
    response = await c.post("/auth/session", json={"token": TOKENS["operator"]})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "rcp_session=" in cookie
    csrf = response.json()["csrf_token"]
    assert (await c.get("/tasks")).status_code == 200  # the client keeps the cookie
    missing = await c.post("/tasks/quick/run")
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    assert (await c.post("/tasks/quick/run", headers={"X-CSRF-Token": "forged"})).status_code == 403
    assert (await c.post("/tasks/quick/run", headers={"X-CSRF-Token": csrf})).status_code == 202
    assert (await c.get("/auth/session")).json()["name"] == "operator"
    assert (await c.delete("/auth/session")).status_code == 204
    c.cookies.clear()
    assert (await c.get("/tasks")).status_code == 401


async def test_audit_records_who_did_what_from_where_and_the_outcome(secured):
    c = secured.client
    await c.post("/tasks/quick/run", headers=bearer("operator"))
    await c.post("/tasks/quick/run", headers=bearer("reader"))
    await c.post("/tasks/nope/run", headers=bearer("operator"))
    await c.post("/session/shutdown")
    await c.get("/tasks", headers=bearer("operator"))  # reads are not audited

    async def entries():
        body = (await c.get("/audit", headers=bearer("boss"))).json()
        return body["data"] if len(body["data"]) >= 4 else None

    data = await async_wait_until(entries, what="four audit entries")
    seen = {(e["actor"], e["method"], e["route"], e["task"], e["status"]) for e in data}
    assert {
        ("operator", "POST", "/tasks/{name}/run", "quick", 202),
        ("reader", "POST", "/tasks/{name}/run", "quick", 403),
        ("operator", "POST", "/tasks/{name}/run", "nope", 404),
        ("anonymous", "POST", "/session/shutdown", None, 401),
    } <= seen
    assert all(e["client"] for e in data)
    only = (await c.get("/audit", params={"actor": "reader"}, headers=bearer("boss"))).json()["data"]
    assert {e["actor"] for e in only} == {"reader"}
    assert secured.scheduler.is_ready  # the refused shutdown did nothing


async def test_bodies_over_the_limit_are_413(tmp_path):
    env, serving = await start_service(make_settings(tmp_path, max_body_bytes=1024))
    try:
        big = json.dumps({"start_cond": "x" * 2000})
        response = await env.client.patch(
            "/tasks/quick", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413 and "limit of 1024 bytes" in response.json()["detail"]

        async def chunks():
            for _ in range(4):
                yield b"x" * 400

        response = await env.client.post("/tasks/quick/run", content=chunks())
        assert response.status_code == 413
        assert (await env.client.post("/tasks/quick/run", json={"n": 1})).status_code == 202
    finally:
        await stop_service(env, serving)


async def test_long_names_are_422_and_headers_are_safe(service):
    response = await service.client.get("/tasks/" + "x" * 300)
    assert response.status_code == 422
    response = await service.client.get("/tasks")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers


async def test_cors_only_for_listed_origins_and_docs_can_be_off(tmp_path):
    settings = make_settings(tmp_path, cors_origins=["https://ops.example"], docs=False)
    env, serving = await start_service(settings)
    try:
        allowed = await env.client.get("/health", headers={"Origin": "https://ops.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://ops.example"
        other = await env.client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await env.client.get(path)).status_code == 404
    finally:
        await stop_service(env, serving)


async def test_changes_sent_from_other_sites_are_refused(tmp_path):
    settings = make_settings(tmp_path, cors_origins=["https://ops.example"])
    env, serving = await start_service(settings)
    c = env.client
    try:
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "http://127.0.0.1:9999"},  # another port of this very machine
            {"Origin": "null"},  # sandboxed frames, files
            {"Referer": "http://evil.example/page.html"},
        ):
            refused = await c.post("/tasks/slow_async/run", headers=headers)
            assert refused.status_code == 403, headers
            assert "another site" in refused.json()["detail"]
            assert (await c.post("/session/shutdown", headers=headers)).status_code == 403
            assert (await c.patch("/tasks/quick", json={"priority": 5}, headers=headers)).status_code == 403
        assert env.task("slow_async").status is None and env.task("quick").priority == 0
        assert env.scheduler.is_ready
        # The service's own pages, listed origins and programs that send no origin act.
        for headers in ({"Origin": "http://127.0.0.1:8000"}, {"Origin": "https://ops.example"}, {}):
            assert (await c.post("/tasks/quick/run", headers=headers)).status_code == 202, headers
            await async_wait_until(lambda: not env.task("quick").is_alive(), what="quick ended")
        # Reads are not changes (the browser keeps other sites from reading the answer).
        assert (await c.get("/tasks", headers={"Origin": "http://evil.example"})).status_code == 200
    finally:
        await stop_service(env, serving)


async def test_requests_for_other_host_names_are_refused(tmp_path):
    env, serving = await start_service(make_settings(tmp_path, allowed_hosts=["scheduler.internal"]))
    c = env.client
    try:
        # A page of attacker.example whose name was rebound to 127.0.0.1 sends its own name.
        for method in ("GET", "POST"):
            response = await c.request(method, "/tasks/quick/run", headers={"Host": "attacker.example"})
            assert response.status_code == 400, method
        assert (await c.get("/health", headers={"Host": "attacker.example:8000"})).status_code == 400
        assert env.task("quick").status is None
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "scheduler.internal"):
            assert (await c.get("/health", headers={"Host": host})).status_code == 200, host
    finally:
        await stop_service(env, serving)


def test_open_access_is_refused_beyond_loopback():
    open_registry = TokenRegistry([])
    for host in ("127.0.0.1", "::1", "localhost"):
        check_exposure(host, open_registry)
    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        with pytest.raises(ValueError, match="without API tokens"):
            check_exposure(host, open_registry)
    secured = TokenRegistry([TokenSpec(name="a", role=Role.admin, digest=digest("t"))])
    check_exposure("0.0.0.0", secured)


def test_token_configuration_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        TokenRegistry(
            [
                TokenSpec(name="a", role="read", digest=digest("1")),
                TokenSpec(name="a", role="admin", digest=digest("2")),
            ]
        )
    with pytest.raises(ValueError, match="sha256"):
        TokenSpec(name="a", role="read", digest="plaintext-token")
    with pytest.raises(ValueError, match="role must be one of"):
        TokenSpec(name="a", role="root", digest=digest("1"))


def test_token_command_prints_a_token_and_its_entry(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "control.tokens", "--name", "ci", "--role", "operate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    token = out[0].split(": ", 1)[1]
    entry = json.loads(out[1].split(": ", 1)[1])
    assert entry == {"name": "ci", "role": "operate", "digest": digest(token)}
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps([entry]))
    registry = TokenRegistry(make_settings(tmp_path, tokens_file=tokens_file).token_specs())
    assert registry.identify(token).name == "ci"
    assert registry.identify(token + "x") is None


def test_refusal_to_bind_beyond_loopback_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "main.py", "--host", "0.0.0.0", "--database", str(tmp_path / "x.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: refusing to listen on 0.0.0.0 without API tokens")
    assert "Traceback" not in result.stderr
