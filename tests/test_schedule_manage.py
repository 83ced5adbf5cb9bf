"""Next run of a schedule: days and times in local wall time, strictly after now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from expirytrack_desktop.schedule import Schedule
from expirytrack_desktop.schedule.manage import next_run

TZ = timezone(timedelta(hours=1))  # any local zone: the schedule's times are local wall time


def sched(times, days):
    return Schedule(name="x", instruments=["NIFTY"], times=times, days=days).validate()


@pytest.mark.parametrize(
    ("now", "times", "days", "expected"),
    [
        # Monday 2025-11-17 10:00
        ((2025, 11, 17, 10, 0), ["16:30"], [0, 1, 2, 3, 4], (2025, 11, 17, 16, 30)),
        (
            (2025, 11, 17, 16, 30),
            ["16:30"],
            [0, 1, 2, 3, 4],
            (2025, 11, 18, 16, 30),
        ),  # strictly after
        ((2025, 11, 21, 17, 0), ["16:30"], [0, 1, 2, 3, 4], (2025, 11, 24, 16, 30)),  # Fri -> Mon
        ((2025, 11, 17, 10, 0), ["09:00", "12:00"], [0], (2025, 11, 17, 12, 0)),
        ((2025, 11, 17, 13, 0), ["09:00", "12:00"], [0], (2025, 11, 24, 9, 0)),  # a week on
        ((2025, 11, 17, 10, 0), ["08:00"], [6], (2025, 11, 23, 8, 0)),  # Sunday only
    ],
)
def test_next_run(now, times, days, expected):
    assert next_run(sched(times, days), datetime(*now, tzinfo=TZ)) == datetime(*expected, tzinfo=TZ)
