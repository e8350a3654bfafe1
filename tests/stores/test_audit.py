"""The audit store contract, over every backend: entries kept, paged newest first, pruned by age;
a write that fails is counted, never raised."""

from control.stores.base import AuditEntry, AuditQuery

import time

import pytest

from tests.utils.stores import opened


def entry(created, actor="ops", task="quick", status=202, **fields) -> AuditEntry:
    values = {"client": "127.0.0.1", "method": "POST", "route": "/tasks/{name}/run"} | fields
    return AuditEntry(created=created, actor=actor, task=task, status=status, **values)


@pytest.fixture
def audit(store_url):
    with opened(store_url) as stores:
        yield stores.audit


def test_entries_page_newest_first_with_filters(audit):
    for i in range(12):
        audit.record(entry(1000.0 + i // 3, actor="ops" if i % 2 else "ci", task=f"t{i % 3}"))
    seen, cursor = [], None
    while True:
        page, cursor = audit.page(AuditQuery(limit=5, cursor=cursor))
        seen += page
        if cursor is None:
            break
    assert len(seen) == 12 and len({e.id for e in seen}) == 12
    assert [(e.created, e.id) for e in seen] == sorted(((e.created, e.id) for e in seen), reverse=True)
    only, _ = audit.page(AuditQuery(actors=("ci",), tasks=("t0",), since=1001.0, until=1003.0))
    assert only and all(e.actor == "ci" and e.task == "t0" and 1001.0 <= e.created <= 1003.0 for e in only)


def test_fields_are_bounded_and_made_storable(audit):
    audit.record(entry(1.0, actor="a" * 300, task="t\ud800" * 100, route="/" + "r" * 500))
    (kept,), _ = audit.page(AuditQuery())
    assert len(kept.actor) == 100 and len(kept.route) == 200 and len(kept.task) == 255
    assert kept.task.startswith("t\\ud800") and audit.failed == 0


def test_old_entries_are_pruned(audit):
    now = time.time()
    audit.record(entry(now - 3 * 86_400))
    audit.record(entry(now))
    assert audit.prune(now=now, days=1) == 1
    (left,), _ = audit.page(AuditQuery())
    assert left.created == now


def test_a_write_that_fails_is_counted_not_raised(store_url):
    with opened(store_url) as stores:
        # Each backend refuses one of these: a NaN time (SQLite, MariaDB), NUL in text (PostgreSQL).
        stores.audit.record(entry(float("nan"), actor="nul \x00"))
        stores.audit.record(entry(1.0))
        assert stores.audit.failed == 1
        assert len(stores.audit.page(AuditQuery())[0]) == 1
