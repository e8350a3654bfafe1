"""The fixes to Rocketry applied with the session: cron periods built once per expression."""

from control.engine import session as fixes

import datetime

import pytest
from rocketry.time import Cron


@pytest.mark.parametrize(
    "expression",
    ["*/7 * * * *", "0 9 * * 1-5", "30 2 1,15 * *", "0 0 * 2 0", "*/15 8-18 * * MON-FRI"],
)
def test_a_cron_period_built_once_is_the_one_built_each_time(expression):
    cron = Cron(*expression.split())
    fresh = fixes._build_cron_periods(cron)
    assert cron.get_subperiod() is cron.get_subperiod()
    start = datetime.datetime(2026, 2, 27, 23, 58)
    for minutes in range(0, 3 * 24 * 60, 37):
        moment = start + datetime.timedelta(minutes=minutes)
        assert cron.rollforward(moment) == fresh.rollforward(moment), moment
        assert cron.rollback(moment) == fresh.rollback(moment), moment
