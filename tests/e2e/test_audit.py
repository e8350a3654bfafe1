"""The audit trail of the real server: the client address it believes, and its pruning."""

import json
import sqlite3
import time

import pytest

from tests.utils.waiting import wait_until

pytestmark = pytest.mark.slow


def _clients(service) -> list[str]:
    return [e["client"] for e in service.client.get("/audit").json()["data"]]


def test_forwarded_addresses_are_believed_only_from_configured_proxies(start, tmp_path):
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    service = start()
    assert service.client.post("/tasks/quick/run", headers=spoofed).status_code == 202
    assert wait_until(lambda: _clients(service), what="an audit entry") == ["127.0.0.1"]

    behind_proxy = start(
        database=str(tmp_path / "behind-proxy.db"),
        env={"SCHEDULER_TRUSTED_PROXIES": json.dumps(["127.0.0.1"])},
    )
    assert behind_proxy.client.post("/tasks/quick/run", headers=spoofed).status_code == 202
    assert wait_until(lambda: _clients(behind_proxy), what="an audit entry") == ["203.0.113.9"]


def test_the_audit_trail_is_pruned_by_age(start):
    service = start(env={"SCHEDULER_AUDIT_RETENTION_DAYS": "1", "SCHEDULER_RETENTION_INTERVAL": "0.2"})
    with sqlite3.connect(service.database) as db:
        db.execute(
            "INSERT INTO audit_log (created, actor, client, method, route, status) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time() - 2 * 86_400, "ops", "127.0.0.1", "POST", "/session/shutdown", 202),
        )
    assert service.client.post("/tasks/quick/run").status_code == 202

    def actors():
        return [e["actor"] for e in service.client.get("/audit").json()["data"]]

    wait_until(lambda: actors() == ["open"], what="only the recent entry left")
