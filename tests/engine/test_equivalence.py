"""The planned scheduler starts exactly the tasks Rocketry's own pass starts, at the same
moments, over simulated weeks: skipping conditions that cannot have changed loses nothing."""

import datetime

import pytest

from tests.utils.simulation import Spec, simulate

pytestmark = pytest.mark.slow

D = datetime.datetime
T = datetime.timedelta

# Each case: its tasks (name | condition | priority | fails one tick in N), when the
# simulation starts, how long it runs and the clock's step.
CASES = {
    "every": (
        """
        ten_min      | every 10 minutes | 5
        hourly_every | every 1 hour     | 4
        ninety_s     | every 90 seconds | 3 | 4
        """,
        D(2026, 3, 2, 6, 0, 7),
        T(days=1),
        T(seconds=37),
    ),
    "daily": (
        """
        daily         | daily                          | 9
        morning       | daily between 08:00 and 09:30  | 8 | 3
        late          | daily after 22:00              | 7
        early         | daily before 03:00             | 6
        noon          | daily starting 12:00           | 5
        hourly        | hourly                         | 4
        hourly_window | hourly between 15:00 and 45:00 | 3
        """,
        D(2026, 3, 2, 5, 3, 11),
        T(days=4),
        T(minutes=4, seconds=13),
    ),
    "weekly_monthly": (
        """
        monday    | weekly on Monday                    | 9
        midweek   | weekly between Tuesday and Thursday | 8
        weekly    | weekly                              | 7
        monthly   | monthly                             | 6
        mid_month | monthly between 10th and 12th       | 5
        end_month | monthly after 25th                  | 4
        first     | monthly on 1st                      | 3
        """,
        # Across February, 31-day and 30-day months.
        D(2026, 1, 27, 13, 17, 0),
        T(days=100),
        T(hours=1, minutes=7),
    ),
    "time_of": (
        """
        tod   | time of day between 10:00 and 11:00 & every 20 minutes | 9
        tow   | time of week on Wednesday & every 3 hours              | 8
        tom   | time of month between 1st and 3rd & every 6 hours      | 7
        night | time of day after 23:00 & every 5 minutes              | 6
        toh   | time of hour before 10:00 & every 15 minutes           | 5
        """,
        D(2026, 2, 25, 7, 2, 30),
        T(days=10),
        T(minutes=2, seconds=41),
    ),
    "cron": (
        """
        quarter      | cron */15 * * * * | 9
        weekday_nine | cron 0 9 * * 1-5  | 8
        half_past    | cron 30 */2 * * * | 7 | 2
        """,
        D(2026, 3, 5, 8, 57, 3),
        T(days=3),
        T(seconds=23),
    ),
    "dependencies": (
        """
        source     | every 30 minutes                                  | 10 | 3
        on_success | after task 'source'                               | 5
        on_failure | after task 'source' failed                        | 11
        on_finish  | after task 'source' finished                      | 4
        second_hop | after task 'on_success'                           | 3
        both       | after tasks 'on_success', 'on_finish'             | 2
        today      | task 'source' has succeeded today & every 2 hours | 1
        running    | task 'source' is running                          | 0
        """,
        D(2026, 3, 3, 10, 11, 0),
        T(days=1),
        T(minutes=1, seconds=1),
    ),
    "combinations": (
        """
        window_or_sat | (daily between 08:00 and 10:00 | weekly on Saturday) & every 20 minutes | 9
        outside_hours | ~time of day between 09:00 and 17:00 & every 2 hours                    | 8
        not_sunday    | every 15 minutes & ~time of week on Sunday                              | 7
        either        | daily after 18:00 | every 4 hours                                       | 6 | 5
        never         | false                                                                   | 5
        after_either  | after task 'either' & time of day after 06:00                           | 4
        """,
        D(2026, 3, 6, 3, 33, 33),
        T(days=7),
        T(minutes=3, seconds=7),
    ),
}


def specs(table: str) -> list[Spec]:
    """The rows of a case's table (a condition may itself hold ``|``: the numbers end a row)."""
    tasks = []
    for line in table.strip().splitlines():
        name, *rest = (part.strip() for part in line.split(" | "))
        numbers = []
        while rest[-1].isdigit():
            numbers.insert(0, int(rest.pop()))
        tasks.append(Spec(name, " | ".join(rest), *numbers))
    return tasks


@pytest.mark.parametrize("case", sorted(CASES))
def test_planned_starts_equal_plain_starts(case, tmp_path):
    table, start, duration, step = CASES[case]
    tasks = specs(table)
    kwargs = {"start": start, "end": start + duration, "step": step, "workdir": tmp_path}
    plain = simulate(tasks, planned=False, **kwargs)
    planned = simulate(tasks, planned=True, **kwargs)
    started = {name for _, name in plain}
    # Every task but the one that never runs started at some point: the cases exercise them.
    assert started >= {s.name for s in tasks} - {"never", "running"}, started
    assert planned == plain
