"""Pure date-range arithmetic behind the planner and the coverage report.

Ranges are inclusive ``(from_date, to_date)`` pairs of :class:`datetime.date`, as the candle
endpoint takes them. Keeping this pure (no SQLite, no clock) lets the planner and the status
report agree exactly on what "covered" means.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

DateRange = tuple[date, date]
_DAY = timedelta(days=1)


def merge_ranges(ranges: Iterable[DateRange]) -> list[DateRange]:
    """Union of inclusive ranges, sorted; adjacent ranges (to + 1 day == from) are joined."""
    out: list[DateRange] = []
    for start, end in sorted(r for r in ranges if r[0] <= r[1]):
        if out and start <= out[-1][1] + _DAY:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract_ranges(target: DateRange, covered: Iterable[DateRange]) -> list[DateRange]:
    """Parts of ``target`` not inside any ``covered`` range, in date order."""
    start, end = target
    gaps: list[DateRange] = []
    cursor = start
    for c_start, c_end in merge_ranges(covered):
        if c_end < cursor:
            continue
        if c_start > end:
            break
        if c_start > cursor:
            gaps.append((cursor, min(end, c_start - _DAY)))
        cursor = max(cursor, c_end + _DAY)
        if cursor > end:
            break
    if cursor <= end:
        gaps.append((cursor, end))
    return gaps


def chunk_range(rng: DateRange, span_days: int | None) -> list[DateRange]:
    """Split an inclusive range into pieces of at most ``span_days`` days (None = one piece)."""
    start, end = rng
    if span_days is None or span_days <= 0:
        return [rng]
    out: list[DateRange] = []
    while start <= end:
        stop = min(end, start + timedelta(days=span_days - 1))
        out.append((start, stop))
        start = stop + _DAY
    return out


def months_before(day: date, months: int) -> date:
    """``day`` minus whole months, clamped to the month's last day (31 May - 3 -> 28/29 Feb)."""
    total = day.year * 12 + (day.month - 1) - months
    year, month0 = divmod(total, 12)
    month = month0 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(d, day.day))
        except ValueError:
            continue
    raise ValueError(day)  # unreachable
