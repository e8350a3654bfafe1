"""Horizons at the edges: a condition that is false now must say when it may change."""

from control.engine.horizon import INF, next_change

import time

import pytest
from rocketry import Rocketry
from rocketry.parse import parse_condition


@pytest.fixture(scope="module")
def app():
    app = Rocketry(config={"time_func": lambda: app.clock})
    app.clock = time.time()

    @app.task("every 10 minutes", name="every")
    def every():
        return None

    return app


@pytest.mark.parametrize("offset", [0.0, 1e-7, 3e-7, 5e-7, 1e-6, 2e-6, 4e-6])
def test_every_right_at_its_boundary_is_not_lost(app, offset):
    """Rocketry compares microsecond-rounded datetimes, so a float "now" a hair past the
    boundary may still count the last run; the next change must then be just after, not never."""
    session, task = app.session, app.session["every"]
    condition = parse_condition("every 10 minutes", session=session)
    for last in (1795641023.2278285, 1795641023.5, 1795641023.0000005):
        task._last_run = last
        now = last + 600 + offset
        app.clock = now
        if not condition.observe(task=task, session=session):
            change = next_change(condition, task=task, session=session, now=now)
            assert now < change < INF, (last, offset)
            app.clock = change
            assert condition.observe(task=task, session=session), (last, offset)
