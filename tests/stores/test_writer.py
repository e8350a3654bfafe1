"""The record writer on its own: batches, what it does with a record that cannot be written,
and a writing loop that fails (as a bug would) and is restarted."""

from control.stores.sql.writer import RecordWriter

import threading
import time

import pytest
import sqlalchemy as sa

from tests.utils.waiting import wait_until


class Sink:
    """Where the writer writes: keeps the records, refuses the ones marked 'bad'."""

    def __init__(self, *, refuse_marked: bool = False):
        self.rows: list = []
        self.refuse_marked = refuse_marked

    def write(self, batch: list) -> None:
        if any(r == "bad" or (self.refuse_marked and str(r).startswith("marked")) for r in batch):
            raise ValueError("refused")
        self.rows.extend(batch)


@pytest.fixture
def writers():
    made = []

    def make(sink, **options):
        writer = RecordWriter(
            write=sink.write, mark=lambda r, exc: f"marked {r}", probe=lambda: None, **options
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()


def test_a_bad_record_is_written_marked_and_the_rest_in_order(writers):
    sink = Sink()
    writer = writers(sink)
    for record in ("a", "bad", "b"):
        writer.add(record)
    assert writer.flush(5)
    assert sink.rows == ["a", "marked bad", "b"]
    assert writer.health().written == 3


def test_a_record_refused_even_marked_is_set_aside_and_counted(writers):
    sink = Sink(refuse_marked=True)
    writer = writers(sink)
    for record in ("a", "bad", "b"):
        writer.add(record)
    assert writer.flush(5)
    assert sink.rows == ["a", "b"]
    health = writer.health()
    assert (health.status, health.rejected, health.pending) == ("ok", 1, 0)


class FailingOnce(RecordWriter):
    """A writer whose writing loop raises once, as an unforeseen bug would."""

    failed = False

    def _write_pending(self) -> bool:
        if not self.failed:
            self.failed = True
            raise RuntimeError("an unforeseen bug in the writer")
        return super()._write_pending()


def test_the_writing_loop_is_restarted_after_an_unforeseen_error():
    sink = Sink()
    writer = FailingOnce(write=sink.write, mark=lambda r, exc: r, probe=lambda: None)
    try:
        writer.add("a")
        assert writer.flush(5)
        assert sink.rows == ["a"]
        assert (writer.health().restarts, writer.health().status) == (1, "ok")
    finally:
        writer.close()


class AwaySink(Sink):
    """A database that is away: every write fails as a lost connection does."""

    def write(self, batch: list) -> None:
        raise sa.exc.OperationalError("INSERT", {}, ConnectionError("the database is away"))


def test_records_wait_while_the_database_is_away_and_the_oldest_go_beyond_the_limit(writers):
    writer = writers(AwaySink(), max_pending=2)
    for record in ("a", "b", "c"):
        writer.add(record)
    health = wait_until(lambda: (h := writer.health()).status == "degraded" and h, what="degraded")
    assert (health.pending, health.lost, health.rejected) == (2, 1, 0)
    assert "the database is away" in health.last_error


def test_a_writer_without_maintenance_sleeps_until_records_come(writers):
    """Its first maintenance time passed with nothing to maintain, it once woke at every turn."""
    sink = Sink()
    writer = writers(sink, maintain_every=0.01)
    writer.add("a")
    assert writer.flush(5)
    began = time.process_time()
    threading.Event().wait(0.5)  # an interval to measure over: this thread sleeps, so should the writer
    assert time.process_time() - began < 0.1
    writer.add("b")
    assert writer.flush(5) and sink.rows == ["a", "b"]
