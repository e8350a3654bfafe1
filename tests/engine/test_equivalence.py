"""The planned scheduler starts exactly the tasks Rocketry's own pass starts, at the same
moments, over simulated weeks: skipping conditions that cannot have changed loses nothing."""

import datetime

import pytest

from tests.utils.simulation import Spec, simulate

pytestmark = pytest.mark.slow

D = datetime.datetime
T = datetime.timedelta

CASES = {
    "every": (
        [
            Spec("ten_min", "every 10 minutes", 5),
            Spec("hourly_every", "every 1 hour", 4),
            Spec("ninety_s", "every 90 seconds", 3, fails_one_in=4),
        ],
        D(2026, 3, 2, 6, 0, 7),
        T(days=1),
        T(seconds=37),
    ),
    "daily": (
        [
            Spec("daily", "daily", 9),
            Spec("morning", "daily between 08:00 and 09:30", 8, fails_one_in=3),
            Spec("late", "daily after 22:00", 7),
            Spec("early", "daily before 03:00", 6),
            Spec("noon", "daily starting 12:00", 5),
            Spec("hourly", "hourly", 4),
            Spec("hourly_window", "hourly between 15:00 and 45:00", 3),
        ],
        D(2026, 3, 2, 5, 3, 11),
        T(days=4),
        T(minutes=4, seconds=13),
    ),
    "weekly_monthly": (
        [
            Spec("monday", "weekly on Monday", 9),
            Spec("midweek", "weekly between Tuesday and Thursday", 8),
            Spec("weekly", "weekly", 7),
            Spec("monthly", "monthly", 6),
            Spec("mid_month", "monthly between 10th and 12th", 5),
            Spec("end_month", "monthly after 25th", 4),
            Spec("first", "monthly on 1st", 3),
        ],
        # Across February, 31-day and 30-day months.
        D(2026, 1, 27, 13, 17, 0),
        T(days=100),
        T(hours=1, minutes=7),
    ),
    "time_of": (
        [
            Spec("tod", "time of day between 10:00 and 11:00 & every 20 minutes", 9),
            Spec("tow", "time of week on Wednesday & every 3 hours", 8),
            Spec("tom", "time of month between 1st and 3rd & every 6 hours", 7),
            Spec("night", "time of day after 23:00 & every 5 minutes", 6),
            Spec("toh", "time of hour before 10:00 & every 15 minutes", 5),
        ],
        D(2026, 2, 25, 7, 2, 30),
        T(days=10),
        T(minutes=2, seconds=41),
    ),
    "cron": (
        [
            Spec("quarter", "cron */15 * * * *", 9),
            Spec("weekday_nine", "cron 0 9 * * 1-5", 8),
            Spec("half_past", "cron 30 */2 * * *", 7, fails_one_in=2),
        ],
        D(2026, 3, 5, 8, 57, 3),
        T(days=3),
        T(seconds=23),
    ),
    "dependencies": (
        [
            Spec("source", "every 30 minutes", 10, fails_one_in=3),
            Spec("on_success", "after task 'source'", 5),
            Spec("on_failure", "after task 'source' failed", 11),
            Spec("on_finish", "after task 'source' finished", 4),
            Spec("second_hop", "after task 'on_success'", 3),
            Spec("both", "after tasks 'on_success', 'on_finish'", 2),
            Spec("today", "task 'source' has succeeded today & every 2 hours", 1),
            Spec("running", "task 'source' is running", 0),
        ],
        D(2026, 3, 3, 10, 11, 0),
        T(days=1),
        T(seconds=61),
    ),
    "combinations": (
        [
            Spec(
                "window_or_sat", "(daily between 08:00 and 10:00 | weekly on Saturday) & every 20 minutes", 9
            ),
            Spec("outside_hours", "~time of day between 09:00 and 17:00 & every 2 hours", 8),
            Spec("not_sunday", "every 15 minutes & ~time of week on Sunday", 7),
            Spec("either", "daily after 18:00 | every 4 hours", 6, fails_one_in=5),
            Spec("never", "false", 5),
            Spec("after_either", "after task 'either' & time of day after 06:00", 4),
        ],
        D(2026, 3, 6, 3, 33, 33),
        T(days=7),
        T(minutes=3, seconds=7),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_planned_starts_equal_plain_starts(case, tmp_path):
    specs, start, duration, step = CASES[case]
    kwargs = {"start": start, "end": start + duration, "step": step, "workdir": tmp_path}
    plain = simulate(specs, planned=False, **kwargs)
    planned = simulate(specs, planned=True, **kwargs)
    started = {name for _, name in plain}
    # Every task but the one that never runs started at some point: the cases exercise them.
    assert started >= {s.name for s in specs} - {"never", "running"}, started
    assert planned == plain
