"""What only some backends do: the indexes the log's queries rely on, and SQLite's query plans."""

import pytest
import sqlalchemy as sa

from tests.utils.stores import backend, opened


def test_the_log_has_the_indexes_its_queries_use(store_url):
    with opened(store_url):
        engine = sa.create_engine(store_url)
        names = {index["name"] for index in sa.inspect(engine).get_indexes("task_log")}
        engine.dispose()
    assert {
        "ix_task_log_created",
        "ix_task_log_task_created",
        "ix_task_log_task_action_created",
        "ix_task_log_task_run",
    } <= names


def test_sqlite_pages_a_task_by_its_index(store_url):
    if backend(store_url) != "sqlite":
        pytest.skip("a SQLite query plan")
    with opened(store_url):
        engine = sa.create_engine(store_url)
        with engine.connect() as conn:
            plan = " ".join(
                row[-1]
                for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT * FROM task_log WHERE task_name = 'a' "
                    "ORDER BY created DESC, id DESC LIMIT 100"
                )
            )
        engine.dispose()
    assert "USING INDEX ix_task_log_task_created" in plan, plan
