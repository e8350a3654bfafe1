"""A page of another site, in a real browser, tries every change the API offers against an open
service on loopback: none may act. (The dashboard's own tests show that its changes, sent
from the service's own origin, still act.)"""

import functools
import http.server
import json
import threading

import pytest

from tests.utils.service_process import free_port
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow

# Runs in the attacker's page: every request the browser will send cross-site without asking
# the service first (no-cors fetches, a form), requests that need a CORS preflight, and a
# WebSocket. It records what it could observe and marks the page done.
ATTACK_PAGE = """<!doctype html>
<html><body>
<iframe name="sink" hidden></iframe>
<script>
const attacks = %(attacks)s;
const results = [];
async function attack(a) {
  const simple = a.method === "POST";
  try {
    await fetch(a.url, {method: a.method, mode: simple ? "no-cors" : "cors", credentials: "include",
                        body: a.body, headers: simple ? {} : {"Content-Type": "application/json"}});
    results.push([a.method, a.url, "sent"]);
  } catch (error) {
    results.push([a.method, a.url, "blocked: " + error.message]);
  }
}
function socket(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => { ws.send(JSON.stringify({id: 1, text: "cross-site"})); resolve("opened"); };
    ws.onerror = () => resolve("refused");
  });
}
(async () => {
  for (const a of attacks) await attack(a);
  results.push(["WS", "batch", await socket(%(socket)s)]);
  const form = document.createElement("form");
  form.method = "post";
  form.action = %(form)s;
  form.target = "sink";
  document.body.appendChild(form);
  form.submit();
  document.querySelector("iframe").onload = () => {
    document.body.dataset.results = JSON.stringify(results);
    document.body.dataset.done = "yes";
  };
})();
</script>
</body></html>
"""

VICTIM = {
    "name": "victim",
    "func": "tests.support_tasks.probes:slow_async",
    "description": "must stay as it is",
}


def _mutations(service) -> list[dict]:
    """Every change the service's schema offers, aimed at the task ``victim``; shutdown last."""
    schema = service.client.get("/openapi.json").json()
    bodies = {
        "/tasks": json.dumps({**VICTIM, "name": "planted"}),
        "/tasks/{name}": json.dumps({"priority": 7}),
        "/session/parameters/{name}": json.dumps({"value": 1}),
        "/definitions/import": json.dumps({"runtime_tasks": [{**VICTIM, "name": "planted"}]}),
        "/auth/session": json.dumps({"token": "x"}),
    }
    attacks = []
    for path, operations in schema["paths"].items():
        for method in operations:
            if method.upper() not in ("POST", "PUT", "PATCH", "DELETE"):
                continue
            url = path.replace("{name}", "victim").replace("{version}", "1")
            attacks.append(
                {
                    "method": method.upper(),
                    "url": f"http://127.0.0.1:{service.port}{url}",
                    "body": bodies.get(path),
                }
            )
    attacks.sort(key=lambda a: a["url"].endswith("/session/shutdown"))
    return attacks


@pytest.fixture
def attacker_site(tmp_path):
    """A web server on another loopback port: another origin, as far as the browser knows."""
    folder = tmp_path / "attacker"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_page_of_another_site_cannot_change_anything(start, browser, attacker_site):
    service = start(env={"SCHEDULER_BATCH_EXAMPLE": "true", "SCHEDULER_BATCH_EVERY": "0.2"})
    assert service.client.post("/tasks", json=VICTIM).status_code == 201
    before = service.task("victim")
    attacks = _mutations(service)
    assert len(attacks) >= 15
    folder, site = attacker_site
    (folder / "index.html").write_text(
        ATTACK_PAGE
        % {
            "attacks": json.dumps(attacks),
            "socket": json.dumps(f"ws://127.0.0.1:{service.port}/batch"),
            "form": json.dumps(f"http://127.0.0.1:{service.port}/tasks/victim/run"),
        }
    )

    context = browser.new_context()
    try:
        attacker = context.new_page()
        attacker.goto(f"{site}/index.html")
        attacker.wait_for_selector("body[data-done=yes]", state="attached", timeout=30_000)
        results = json.loads(attacker.locator("body").get_attribute("data-results"))
    finally:
        context.close()

    # The simple requests reached the service (they are in its audit trail) and were refused.
    posts = [a for a in attacks if a["method"] == "POST"]
    assert [r[2] for r in results if r[0] == "POST"] == ["sent"] * len(posts)
    assert ["WS", "batch", "refused"] in results

    def refusals():
        entries = service.client.get("/audit", params={"limit": 1000}).json()["data"]
        return [e for e in entries if e["status"] == 403]

    refused = wait_until(lambda: len(refusals()) >= len(posts) + 1 and refusals(), what="refusals audited")
    assert {e["route"] for e in refused} >= {"/tasks/victim/run", "/session/shutdown", "/tasks"}
    assert all(
        e["status"] != 202 for e in service.client.get("/audit").json()["data"] if e["task"] == "victim"
    )

    # Nothing changed: the service runs, the victim is as it was, nothing was planted.
    assert service.client.get("/health").json()["status"] == "ok"
    after = service.task("victim")
    for field in ("priority", "disabled", "description", "start_cond", "status", "last_run"):
        assert after[field] == before[field], field
    assert service.client.get("/tasks/planted").status_code == 404
    assert service.client.get("/session/parameters").json()["count"] == 0
    assert len(service.client.get("/tasks/victim/versions").json()["data"]) == 1
    assert service.logs(task="victim") == []
    assert all(r["action"] != "success" for r in service.logs(task="batch_requests"))
