"""pytest plugin for Rocketry's suite: installs the bridge and deselects the tests listed here.

Every entry gives the upstream reason. Nothing else is deselected.
"""

import control  # noqa: F401  (the bridge, before the suite imports rocketry)

DESELECTED = {
    # redbird 0.7.1's SQLRepo calls sqlalchemy.orm without importing it, which fails on
    # SQLAlchemy 2 ("module 'sqlalchemy' has no attribute 'orm'"), and on SQLite rejects
    # Rocketry's float timestamps. This service does not use SQLRepo: its own store is
    # control/stores/sql/, tested by tests/stores.
    "test/log/test_repo.py::test_cache[MinimalRecord-get_sql]": "redbird SQLRepo broken on SQLAlchemy 2",
    "test/log/test_repo.py::test_cache[MinimalRunRecord-get_sql]": "redbird SQLRepo broken on SQLAlchemy 2",
    "test/log/test_repo.py::test_cache[TaskLogRecord-get_sql]": "redbird SQLRepo broken on SQLAlchemy 2",
    "test/log/test_repo.py::test_cache[TaskRunRecord-get_sql]": "redbird SQLRepo broken on SQLAlchemy 2",
}


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        (drop if any(item.nodeid.endswith(entry) for entry in DESELECTED) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
