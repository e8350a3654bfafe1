"""Replicas started at the same moment on a PostgreSQL database with no tables, or with the
tables of the version before replicas, all come up (one makes or upgrades the schema under the
lock, the others wait and find it done) and agree on one leader."""

from control.stores.sql.migrations import head

import pytest

from tests.utils.replicas import role, session, wait_leader
from tests.utils.schemas import assert_old_rows_kept, made_at, revision_of, write_old_rows
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PACKAGES = '["tests.support_tasks_cluster"]'
REPLICAS = 3


@pytest.mark.parametrize("made", ["empty", "first revision"])
def test_replicas_started_at_once_all_come_up_and_one_leads(postgres_database_url, start, made):
    url = postgres_database_url
    if made == "first revision":
        made_at(url, "0001", versioned=False)  # as the version before migrations left it
        write_old_rows(url)
    env = {"CLUSTER_TASKS": "2", "CLUSTER_EVERY": "1"}
    # All launched before any is waited for: they reach the database within the same moment.
    group = [start(database=url, packages=PACKAGES, env=env, healthy=False) for _ in range(REPLICAS)]
    for replica in group:
        replica.wait_healthy(timeout=30)
    leader = wait_leader(group)
    assert sorted(role(replica) for replica in group) == ["follower"] * (REPLICAS - 1) + ["leader"]
    name = session(leader)["replica"]
    wait_until(
        lambda: all(session(replica)["leader"] == name for replica in group), what="every replica names it"
    )
    assert revision_of(url) == head()
    if made == "first revision":
        assert_old_rows_kept(url)
    logs = "".join(replica.log() for replica in group)
    assert logs.count("upgrading to") == 1, logs
