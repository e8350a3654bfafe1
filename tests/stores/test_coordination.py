"""The coordination store: leadership with an epoch, fenced claims, notices, shared events and
requests between replicas on PostgreSQL; on a database that is not shared, a replica leads
alone. And the log's side of fencing: a run starts once and ends once, whoever writes late."""

from control.stores.base import LogQuery, StoreOpenError
from control.stores.sql.engine import database_url

import pytest
import sqlalchemy as sa

from tests.utils.stores import opened, record
from tests.utils.waiting import wait_until


@pytest.fixture
def pair(postgres_schema_url):
    """Two replicas' stores on one PostgreSQL schema."""
    with opened(postgres_schema_url) as one, opened(postgres_schema_url) as two:
        yield one.coordination, two.coordination


def test_one_replica_leads_and_the_next_takes_over_after_it_resigns(pair):
    one, two = pair
    first = one.lead("one")
    assert first is not None and first.replica == "one"
    assert two.lead("two") is None
    assert one.confirm(first.epoch)
    assert two.leader().replica == "one"
    one.resign(first.epoch)
    second = two.lead("two")
    assert second is not None and second.epoch == first.epoch + 1
    assert second.clean  # the previous leader resigned: no need to wait
    assert not one.confirm(first.epoch)


def test_a_leader_whose_connection_dies_loses_the_right_and_its_successor_waits(pair, postgres_schema_url):
    one, two = pair
    first = one.lead("one")
    engine = sa.create_engine(postgres_schema_url)
    with engine.begin() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'rocketry-control coordinator' AND pid <> pg_backend_pid()"
                " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_stat_activity.pid"
                " AND l.locktype = 'advisory')"
            )
        ).all()
    engine.dispose()
    assert killed
    second = wait_until(lambda: two.lead("two"), timeout=5, what="the second replica leads")
    assert second.epoch == first.epoch + 1 and not second.clean
    assert not one.confirm(first.epoch)


def test_claims_are_fenced_by_the_epoch_and_made_once(pair):
    one, two = pair
    first = one.lead("one")
    assert one.claim("t", 1, "r1", first.epoch)
    assert not one.claim("t", 1, "r2", first.epoch)  # that start was claimed
    one.resign(first.epoch)
    second = two.lead("two")
    assert not one.claim("t", 2, "r3", first.epoch)  # deposed
    assert two.claim("t", 2, "r3", second.epoch)
    assert two.last_claims() == {"t": 2}


def test_claims_the_log_does_not_show_started_are_found_once(postgres_schema_url):
    with opened(postgres_schema_url) as stores:
        store = stores.coordination
        first = store.lead("one")
        store.claim("t", 1, "logged", first.epoch)
        store.claim("t", 2, "lost", first.epoch)
        stores.logs.add(record("t", "run", 1.0, run_id="logged"))
        assert stores.logs.flush(5)
        store.resign(first.epoch)
        second = store.lead("one")
        assert [claim.run_id for claim in store.unrecorded_claims(second.epoch)] == ["lost"]
        assert store.unrecorded_claims(second.epoch) == []  # settled by this leader already


def test_notices_reach_the_other_replica(pair):
    one, two = pair
    assert [n.kind for n in two.listen(0.01)] == ["resync"]  # a new connection may have missed some
    one.notify("definitions", "nightly")
    heard = wait_until(lambda: two.listen(0.5), timeout=5, what="a notice")
    assert [(n.kind, n.subject) for n in heard] == [("definitions", "nightly")]


def test_events_are_numbered_in_order_for_every_replica(pair):
    one, two = pair
    start = two.last_event_id()
    one.append_events([("run", "a", 1.0, {"run_id": "r"}), ("output", "a", 2.0, {"text": "hi"})])
    two.append_events([("success", "a", 3.0, {})])
    events = one.events_after(start, 10)
    assert [e.kind for e in events] == ["run", "output", "success"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[1].data == {"text": "hi"}
    assert one.events_after(events[-1].id, 10) == []


def test_a_request_is_answered_once(pair):
    one, two = pair
    request_id = two.submit("run", "t", {"parameters": {"n": 1}})
    assert [(r.id, r.kind, r.payload) for r in one.pending_requests()] == [
        (request_id, "run", {"parameters": {"n": 1}})
    ]
    assert two.answer_of(request_id) is None
    one.answer({request_id: {"ok": {"task": "t"}}})
    one.answer({request_id: {"error": "late"}})  # a second answer changes nothing
    assert two.answer_of(request_id) == {"ok": {"task": "t"}}
    assert one.pending_requests() == []


def test_a_run_starts_once_and_ends_once_whoever_writes_late(store_url):
    with opened(store_url) as stores:
        logs = stores.logs
        logs.stamp(7)
        for action, created in [("run", 1.0), ("run", 1.5), ("crash", 2.0), ("success", 3.0)]:
            logs.add(record("t", action, created, run_id="r1"))
        logs.add(record("t", "run", 4.0, run_id="r2"))
        assert logs.flush(5)
        entries = logs.page(LogQuery(tasks=("t",))).entries
    if store_url.startswith("mysql"):
        assert len(entries) == 5  # one replica only there (enforced): nothing writes late
        return
    assert [(e.action, e.run_id, e.created) for e in reversed(entries)] == [
        ("run", "r1", 1.0),
        ("crash", "r1", 2.0),
        ("run", "r2", 4.0),
    ]
    assert {e.epoch for e in entries} == {7}


def test_alone_a_replica_leads_with_a_new_epoch_each_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'alone.db'}"
    with opened(url) as stores:
        store = stores.coordination
        assert not store.shared
        first = store.lead("me")
        assert store.confirm(first.epoch) and store.claim("t", 1, "r", first.epoch)
        store.resign(first.epoch)
    with opened(url) as stores:
        assert stores.coordination.lead("me").epoch == first.epoch + 1


def test_mariadb_refuses_a_second_scheduler_on_one_database(mariadb_database_url, tmp_path):
    url = database_url(mariadb_database_url, base=tmp_path)
    with opened(url):
        with pytest.raises(StoreOpenError, match="in use by another scheduler"):
            with opened(url):
                pass
    with opened(url):  # released with the first
        pass


def test_sqlite_refuses_a_second_scheduler_on_one_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    with opened(url):
        with pytest.raises(StoreOpenError, match="in use by another scheduler process; on SQLite only one"):
            with opened(url):
                pass
    with opened(url):  # released with the first
        pass
