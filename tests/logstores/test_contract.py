"""The log store contract, run against every backend (SQLite always, PostgreSQL when reachable)."""

from control.logstores.base import LogCursor, LogEntry, LogQuery, OutputLine
from control.logstores.sql import SQLLogStore

import contextlib
import sqlite3
import time

import pytest
import sqlalchemy as sa
from redbird.oper import between, greater_equal, in_

from tests.utils.waiting import wait_until


def record(task, action, created, **extra):
    # What redbird's RepoHandler writes: vars() of a logging.LogRecord.
    return {
        "task_name": task,
        "action": action,
        "created": created,
        "msg": f"{task} {action}",
        "levelname": "INFO",
        "name": "rocketry.task",
        **extra,
    }


@pytest.fixture
def store(store_url):
    store = SQLLogStore(store_url)
    yield store
    store.close()


def test_records_keep_every_field(store):
    store.add(record("a", "run", 100.0, run_id="r1", start=100.0))
    store.add(
        record(
            "a",
            "fail",
            101.5,
            run_id="r1",
            start=100.0,
            end=101.5,
            runtime=1.5,
            exc_text="Traceback...\nValueError: x",
        )
    )
    assert store.flush(5)
    entries = store.page(LogQuery()).entries
    fail = entries[0]
    assert (fail.task_name, fail.action, fail.created, fail.run_id) == ("a", "fail", 101.5, "r1")
    assert (fail.start, fail.end, fail.runtime) == (100.0, 101.5, 1.5)
    assert fail.exc_text.endswith("ValueError: x")
    assert fail.message == "a fail"
    assert isinstance(fail.id, int)


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
    cursor = LogCursor(created=1764097685.1234567, id=42)
    assert LogCursor.decode(cursor.encode()) == cursor
    with pytest.raises(ValueError):
        LogCursor.decode("not a cursor")


def test_records_survive_reopening(store_url):
    first = SQLLogStore(store_url)
    first.add(record("a", "run", 1.0))
    first.add(record("a", "success", 2.0))
    first.close()
    second = SQLLogStore(store_url)
    try:
        assert [e.action for e in second.filter_by(task_name="a").all()] == ["run", "success"]
    finally:
        second.close()


def test_retention_by_age_keeps_the_newest_of_each_action(store_url):
    store = SQLLogStore(store_url, retention_days=1)
    now = time.time()
    old = now - 3 * 86_400
    for i in range(10):
        store.add(record("a", "run", old + i))
        store.add(record("a", "success", old + i + 0.5))
    store.add(record("a", "fail", old - 10))
    store.add(record("a", "run", now))
    store.flush(5)
    removed = store.prune(now=now)
    left = store.filter_by(task_name="a").all()
    store.close()
    assert removed == 19
    # The newest success and fail are kept however old: they restore last_success/last_fail.
    assert sorted((e.action, e.created) for e in left) == sorted(
        [("fail", old - 10), ("success", old + 9.5), ("run", now)]
    )


def test_retention_per_task_bounds_each_task(store_url):
    store = SQLLogStore(store_url, retention_per_task=5)
    for i in range(30):
        store.add(record("busy", "run" if i % 2 == 0 else "success", 100.0 + i))
    store.add(record("quiet", "run", 50.0))
    store.flush(5)
    store.prune(now=time.time())
    busy = store.filter_by(task_name="busy").all()
    quiet = store.filter_by(task_name="quiet").all()
    store.close()
    assert [e.created for e in busy] == [125.0, 126.0, 127.0, 128.0, 129.0]
    assert len(quiet) == 1


def test_queries_use_indexes(store):
    names = {index["name"] for index in sa.inspect(store.engine).get_indexes("task_log")}
    assert {"ix_task_log_created", "ix_task_log_task_created", "ix_task_log_task_action_created"} <= names
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            plan = " ".join(
                row[-1]
                for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT * FROM task_log WHERE task_name = 'a' "
                    "ORDER BY created DESC, id DESC LIMIT 100"
                )
            )
        assert "USING INDEX ix_task_log_task_created" in plan, plan


def test_log_entry_reads_rocketry_values():
    import datetime

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


def test_retention_is_applied_in_the_background(store_url):
    store = SQLLogStore(store_url, retention_per_task=3, retention_interval=0.1)
    try:
        for i in range(20):
            store.add(record("busy", "run", 100.0 + i))
        wait_until(lambda: store.filter_by(task_name="busy").count() == 3, what="background prune")
        assert store.health().pruned == 17
    finally:
        store.close()


def test_text_utf8_cannot_encode_is_stored_as_escapes(store):
    store.add(record("a", "fail", 1.0, run_id="r\ud800", msg="bad \ud800 message", exc_text="bad \udcff"))
    store.add_output(OutputLine("a", "r1", 0, 1.0, "stdout", "printed \ud800"))
    store.add(record("a", "run", 2.0))
    assert store.flush(5)
    entries = store.filter_by(task_name="a").all()
    assert [(e.message, e.exc_text, e.run_id) for e in entries][0] == (
        "bad \\ud800 message",
        "bad \\udcff",
        "r\\ud800",
    )
    assert [line.text for line in store.output("a", "r1")] == ["printed \\ud800"]
    health = store.health()
    assert (health.status, health.pending, health.written, health.rejected) == ("ok", 0, 3, 0)


def _refused_by_the_database(store) -> dict:
    """A record this backend refuses: SQLite has no NaN (it becomes NULL in a NOT NULL
    column); PostgreSQL's text cannot hold NUL."""
    if store.engine.dialect.name == "sqlite":
        return record("a", "success", float("nan"), msg="not a number")
    return record("a", "success", 3.0, msg="nul \x00 inside")


def test_a_record_the_database_refuses_costs_only_itself(store):
    store.add(record("a", "run", 1.0))
    store.add(_refused_by_the_database(store))
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


class _WriterFailingOnce(SQLLogStore):
    """A store whose writing loop raises once, as an unforeseen bug would."""

    def _write_pending(self) -> bool:
        if not getattr(self, "_failed_once", False):
            object.__setattr__(self, "_failed_once", True)
            raise RuntimeError("an unforeseen bug in the writer")
        return super()._write_pending()


def test_the_writer_is_restarted_after_an_unforeseen_error(store_url):
    store = _WriterFailingOnce(store_url)
    try:
        store.add(record("a", "run", 1.0))
        assert store.flush(5)
        assert store.filter_by(task_name="a").count() == 1
        health = store.health()
        assert (health.restarts, health.status) == (1, "ok")
    finally:
        store.close()


@contextlib.contextmanager
def _writes_blocked(store):
    """Another connection holds the table, so the writer's insert waits (it is not refused)."""
    if store.engine.dialect.name == "sqlite":
        path = store.engine.url.database
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        with store.engine.connect() as other:
            other.execute(sa.text("LOCK TABLE task_log IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                other.rollback()


def test_a_writer_that_makes_no_progress_is_reported_degraded(store_url):
    store = SQLLogStore(store_url, stuck_after=0.3)
    try:
        with _writes_blocked(store):
            store.add(record("a", "run", 1.0))
            health = wait_until(lambda: (h := store.health()).status == "degraded" and h, what="degraded")
            assert health.pending == 1 and health.waiting_seconds > 0.3
        assert store.flush(10)
        health = store.health()
        assert (health.status, health.pending, health.waiting_seconds) == ("ok", 0, 0.0)
        assert store.filter_by(task_name="a").count() == 1
    finally:
        store.close()


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
