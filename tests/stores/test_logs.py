"""The log store contract, run over every backend (SQLite always, PostgreSQL and MariaDB when
reachable): what Rocketry writes and reads, pages, retention, crash bookkeeping, and a writer
that no record can stop."""

from control.paging import Cursor
from control.stores.base import LogEntry, LogQuery

import datetime
import time

import pytest
from redbird.oper import between, greater_equal, in_

from tests.utils.stores import opened, record, refused_record, table_locked
from tests.utils.waiting import wait_until


@pytest.fixture
def store(store_url):
    with opened(store_url) as stores:
        yield stores.logs


def test_records_keep_every_field(store):
    store.add(record("a", "run", 100.0, run_id="r1", start=100.0))
    fail = record("a", "fail", 101.5, run_id="r1", start=100.0, end=101.5, runtime=1.5)
    store.add(fail | {"exc_text": "Traceback...\nValueError: x"})
    assert store.flush(5)
    entry = store.page(LogQuery()).entries[0]
    assert (entry.task_name, entry.action, entry.created, entry.run_id) == ("a", "fail", 101.5, "r1")
    assert (entry.start, entry.end, entry.runtime) == (100.0, 101.5, 1.5)
    assert entry.exc_text.endswith("ValueError: x")
    assert entry.message == "a fail"
    assert isinstance(entry.id, int)


def test_redbird_reads_are_in_creation_order(store):
    for created, action in [(1.0, "run"), (2.0, "success"), (3.0, "run"), (4.0, "fail")]:
        store.add(record("a", action, created))
    store.add(record("b", "run", 2.5))
    assert [e.created for e in store.filter_by(task_name="a").all()] == [1.0, 2.0, 3.0, 4.0]
    assert store.filter_by(task_name="a").last().action == "fail"
    assert store.filter_by(task_name="a", action="run").last().created == 3.0
    assert store.filter_by(task_name="a", action=in_(["success", "fail"])).count() == 2
    assert store.filter_by(created=between(2.0, 3.0)).count() == 3
    assert store.filter_by(task_name="a", created=greater_equal(3.0)).first().created == 3.0
    assert store.filter_by(task_name="nobody").last() is None


def test_redbird_update_and_delete(store):
    store.add(record("a", "run", 1.0))
    store.add(record("a", "success", 2.0))
    store.filter_by(action="run").update(run_id="x")
    assert store.filter_by(action="run").first().run_id == "x"
    store.filter_by(task_name="a", action="run").delete()
    assert [e.action for e in store.filter_by(task_name="a").all()] == ["success"]


def test_unknown_field_is_refused(store):
    with pytest.raises(KeyError):
        store.filter_by(colour="red").all()


def test_pages_newest_first_with_filters_and_cursor(store):
    # Equal timestamps on purpose: the cursor must still neither skip nor repeat.
    for i in range(25):
        store.add(record("a" if i % 2 else "b", "run" if i % 3 else "fail", 1000.0 + i // 4))
    store.flush(5)
    seen, cursor = [], None
    while True:
        page = store.page(LogQuery(limit=7, cursor=cursor))
        seen += page.entries
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 25 and len({e.id for e in seen}) == 25
    assert [(e.created, e.id) for e in seen] == sorted(((e.created, e.id) for e in seen), reverse=True)
    only_a = store.page(LogQuery(tasks=("a",), limit=100)).entries
    assert {e.task_name for e in only_a} == {"a"} and len(only_a) == 12
    fails = store.page(LogQuery(actions=("fail",), since=1001.0, until=1003.0, limit=100)).entries
    assert fails and all(e.action == "fail" and 1001.0 <= e.created <= 1003.0 for e in fails)


def test_cursor_round_trips_and_rejects_garbage():
    cursor = Cursor(created=1764097685.1234567, id=42)
    assert Cursor.decode(cursor.encode()) == cursor
    with pytest.raises(ValueError):
        Cursor.decode("not a cursor")


def test_records_survive_reopening(store_url):
    with opened(store_url) as first:
        first.logs.add(record("a", "run", 1.0))
        first.logs.add(record("a", "success", 2.0))
    with opened(store_url) as second:
        assert [e.action for e in second.logs.filter_by(task_name="a").all()] == ["run", "success"]


def test_retention_by_age_keeps_the_newest_of_each_action(store_url):
    now = time.time()
    old = now - 3 * 86_400
    with opened(store_url, days=1) as stores:
        store = stores.logs
        for i in range(10):
            store.add(record("a", "run", old + i))
            store.add(record("a", "success", old + i + 0.5))
        store.add(record("a", "fail", old - 10))
        store.add(record("a", "run", now))
        store.flush(5)
        removed = store.prune(now=now)
        left = store.filter_by(task_name="a").all()
    assert removed == 19
    # The newest success and fail are kept however old: they restore last_success/last_fail.
    assert sorted((e.action, e.created) for e in left) == sorted(
        [("fail", old - 10), ("success", old + 9.5), ("run", now)]
    )


def test_retention_per_task_bounds_each_task(store_url):
    with opened(store_url, per_task=5) as stores:
        store = stores.logs
        for i in range(30):
            store.add(record("busy", "run" if i % 2 == 0 else "success", 100.0 + i))
        store.add(record("quiet", "run", 50.0))
        store.flush(5)
        store.prune(now=time.time())
        busy = store.filter_by(task_name="busy").all()
        quiet = store.filter_by(task_name="quiet").all()
    assert [e.created for e in busy] == [125.0, 126.0, 127.0, 128.0, 129.0]
    assert len(quiet) == 1


def test_retention_is_applied_in_the_background(store_url):
    with opened(store_url, per_task=3, every=0.1) as stores:
        for i in range(20):
            stores.logs.add(record("busy", "run", 100.0 + i))
        wait_until(lambda: stores.logs.filter_by(task_name="busy").count() == 3, what="background prune")
        assert stores.logs.health().pruned == 17


def test_log_entry_reads_rocketry_values():
    entry = LogEntry.from_mapping(
        {
            "task_name": "a",
            "action": "success",
            "created": 10,
            "start": datetime.datetime.fromtimestamp(5, tz=datetime.UTC),
            "runtime": datetime.timedelta(seconds=1),
            "message": "m",
        }
    )
    assert (entry.start, entry.runtime, entry.created) == (5.0, 1.0, 10.0)


def test_latest_actions_include_records_not_written_yet(store):
    store.add(record("a", "run", 1.0))
    store.add(record("a", "success", 2.0))
    store.add(record("b", "fail", 3.0))
    assert store.latest_actions() == {"a": {"run": 1.0, "success": 2.0}, "b": {"fail": 3.0}}


def test_unfinished_runs_are_those_without_an_outcome_since_the_last_check(store):
    store.add(record("a", "run", 1.0, run_id="done"))
    store.add(record("a", "success", 2.0, run_id="done"))
    store.add(record("a", "run", 3.0, run_id="cut"))
    store.add(record("a", "run", 4.0, run_id="side"))
    store.add(record("b", "run", 5.0, run_id="other"))
    store.add(record("b", "terminate", 6.0, run_id="other"))
    store.add(record("c", "run", 7.0))  # no run id: not a run it can name
    assert [(e.task_name, e.run_id) for e in store.unfinished_runs()] == [("a", "cut"), ("a", "side")]
    store.add(record("a", "crash", 8.0, run_id="cut"))
    store.mark_runs_checked(3.5)
    assert [e.run_id for e in store.unfinished_runs()] == ["side"]
    store.mark_runs_checked(9.0)
    assert store.unfinished_runs() == []


def test_text_utf8_cannot_encode_is_stored_as_escapes(store):
    store.add(record("a", "fail", 1.0, run_id="r\ud800", msg="bad \ud800 message", exc_text="bad \udcff"))
    store.add(record("a", "run", 2.0))
    assert store.flush(5)
    entries = store.filter_by(task_name="a").all()
    assert (entries[0].message, entries[0].exc_text, entries[0].run_id) == (
        "bad \\ud800 message",
        "bad \\udcff",
        "r\\ud800",
    )
    health = store.health()
    assert (health.status, health.pending, health.written, health.rejected) == ("ok", 0, 2, 0)


def test_a_record_the_database_refuses_costs_only_itself(store_url):
    with opened(store_url) as stores:
        store = stores.logs
        store.add(record("a", "run", 1.0))
        store.add(refused_record(store_url))
        store.add(record("a", "run", 4.0))
        assert store.flush(5)
        entries = store.filter_by(task_name="a").all()
        assert [e.created for e in entries if e.action == "run"] == [1.0, 4.0]
        marked = [e for e in entries if e.action == "success"]
        assert len(marked) == 1 and marked[0].message.startswith("[stored in marked form")
        # The writer goes on.
        store.add(record("a", "run", 5.0))
        assert store.flush(5)
        assert store.health().status == "ok" and store.health().pending == 0


def test_a_writer_that_makes_no_progress_is_reported_degraded(store_url):
    with opened(store_url, stuck_after=0.3) as stores:
        store = stores.logs
        with table_locked(store_url, "task_log"):
            store.add(record("a", "run", 1.0))
            health = wait_until(lambda: (h := store.health()).status == "degraded" and h, what="degraded")
            assert health.pending == 1 and health.waiting_seconds > 0.3
        assert store.flush(10)
        health = store.health()
        assert (health.status, health.pending, health.waiting_seconds) == ("ok", 0, 0.0)
        assert store.filter_by(task_name="a").count() == 1
