"""The store of runs on workers, over every backend: sent, taken once, kept alive, ended,
forgotten; and what a worker opens of it."""

from control.stores.base import StoreOpenError
from control.stores.sql import open_worker_stores

import pytest

from tests.utils.stores import opened

PAYLOAD = {"task": "t", "target": "pkg.mod:func", "parameters": {"n": 1, "text": "é"}}


@pytest.fixture
def stores(store_url):
    with opened(store_url) as stores:
        yield stores


def test_a_run_is_taken_once_beats_and_ends_once(stores):
    remote = stores.remote
    remote.sent("r1", "t", PAYLOAD, 10.0)
    (state,) = remote.states(["r1"])
    assert (state.task_name, state.sent, state.payload, state.started, state.outcome) == (
        "t",
        10.0,
        PAYLOAD,
        None,
        None,
    )
    assert remote.take("r1", "w1@host", 11.0)
    assert not remote.take("r1", "w2@host", 11.5)  # delivered twice: run once
    remote.beat(["r1", "nope"], 12.0)
    (state,) = remote.states(["r1"])
    assert (state.worker, state.started, state.beat) == ("w1@host", 11.0, 12.0)
    remote.end("r1", "fail", 13.0, message=None, exc_text="Traceback: boom")
    remote.end("r1", "success", 14.0, message=None, exc_text=None)  # a second outcome is ignored
    remote.beat(["r1"], 15.0)  # and it no longer beats
    (state,) = remote.states(["r1"])
    assert (state.outcome, state.ended, state.exc_text, state.beat) == ("fail", 13.0, "Traceback: boom", 12.0)


def test_forgetting_settles_a_run_for_good(stores):
    remote = stores.remote
    remote.sent("r1", "t", PAYLOAD, 10.0)
    remote.sent("r2", "t", PAYLOAD, 10.0)
    remote.take("r2", "w", 11.0)
    assert not remote.forget("r2", unless_taken=True)  # a worker has it
    assert remote.forget("r1", unless_taken=True)
    assert not remote.take("r1", "w", 12.0)  # given up: a late delivery does not run it
    assert remote.forget("r2")
    assert remote.states(["r1", "r2"]) == []
    assert not remote.forget("r2")


def test_many_runs_are_read_in_one_call(stores):
    remote = stores.remote
    ids = [f"r{i}" for i in range(1200)]
    for run_id in ids[::100]:
        remote.sent(run_id, "t", PAYLOAD, 1.0)
    assert sorted(state.run_id for state in remote.states(ids)) == sorted(ids[::100])
    assert remote.states([]) == []


def test_a_worker_uses_the_service_database_and_is_told_when_there_is_none(store_url, tmp_path):
    with opened(store_url) as stores:
        stores.remote.sent("r1", "t", PAYLOAD, 1.0)
    worker = open_worker_stores(store_url)
    try:
        assert worker.remote.take("r1", "w", 2.0)
    finally:
        worker.close()
    with pytest.raises(StoreOpenError, match="start the service on it first"):
        open_worker_stores(f"sqlite:///{tmp_path / 'never-made.db'}")
