"""The /definitions routes: every definition exported as one document, imported elsewhere."""

from tests.utils.api import create
from tests.utils.fixtures import make_settings, start_service, stop_service


async def test_export_then_import_elsewhere_with_a_dry_run(service, tmp_path):
    await create(service, start_cond="every 1 hour", parameters={"n": 2})
    await service.client.patch("/tasks/quick", json={"priority": 5})
    await service.client.put("/session/parameters/region", json={"value": "eu"})
    document = (await service.client.get("/definitions")).json()
    env, serving = await start_service(make_settings(tmp_path / "other"))
    try:
        dry = (await env.client.post("/definitions/import", params={"dry_run": "true"}, json=document)).json()
        assert {(c["target"], c["action"]) for c in dry["changes"]} == {
            ("made", "create"),
            ("quick", "update"),
            ("parameter:region", "create"),
        }
        assert dry["applied"] is False and "made" not in env.app.session
        done = (await env.client.post("/definitions/import", json=document)).json()
        assert done["applied"] is True
        assert env.task("made").priority == 0 and env.task("quick").priority == 5
        assert (await env.client.get("/session/parameters/region")).json()["value"] == "eu"
        again = (await env.client.post("/definitions/import", json=document)).json()
        assert {c["action"] for c in again["changes"]} == {"unchanged"}
        document["runtime_tasks"].append({"name": "bad", "func": "os:system"})
        refused = await env.client.post("/definitions/import", json=document)
        assert refused.status_code == 422
        assert any(c["action"] == "error" and c["target"] == "bad" for c in refused.json()["changes"])
        assert "bad" not in env.app.session
    finally:
        await stop_service(env, serving)
