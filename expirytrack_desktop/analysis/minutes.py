"""Trading minutes: IST wall time <-> candle epoch seconds, and the nearest earlier session minute.

A 1-minute candle's ``ts`` is the epoch second its minute starts. NSE/BSE F&O sessions run
09:15-15:30 IST, so the session's minutes start 09:15 ... 15:29. Which days were trading days
is read from the stored candles themselves (the data knows its holidays; no calendar to keep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from expirytrack_desktop.timeutil import IST

SESSION_OPEN = time(9, 15)
SESSION_LAST_MINUTE = time(15, 29)
SESSION_CLOSE = time(15, 30)
DAY = 86_400


def ist_epoch(d: date, t: time) -> int:
    """Epoch seconds of the IST wall time ``d t``."""
    return int(datetime.combine(d, t, tzinfo=IST).timestamp())


def ist_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, IST)


def day_start(ts: int) -> int:
    """Epoch seconds of 00:00 IST of the day ``ts`` falls on."""
    return ist_epoch(ist_datetime(ts).date(), time(0, 0))


@dataclass(frozen=True, slots=True)
class ResolvedMinute:
    """The minute a snapshot shows: the one asked for, or the nearest earlier trading minute."""

    requested: datetime
    minute: datetime | None  # None: no stored data at or before the request
    note: str  # "" when the requested minute is shown as asked

    @property
    def ts(self) -> int | None:
        return int(self.minute.timestamp()) if self.minute else None


def resolve_minute(
    requested: datetime, last_candle_at_or_before: Callable[[int], int | None]
) -> ResolvedMinute:
    """Move ``requested`` (IST) to the nearest earlier trading minute with stored data.

    ``last_candle_at_or_before(ts)`` answers the latest candle start ``<= ts`` among the
    contracts shown (None when there is none). A day is a trading day when it has candles.
    Inside a trading day's session the minute is kept even if nothing traded in it; before the
    open it moves to the previous trading day's 15:29, after 15:29 to 15:29 of the same day.
    """
    requested = requested.astimezone(IST).replace(second=0, microsecond=0)
    day = requested.date()
    end_of_day = ist_epoch(day, time(23, 59))
    latest = last_candle_at_or_before(end_of_day)
    if latest is None:
        return ResolvedMinute(requested, None, "no stored data at or before this minute")
    latest_day = ist_datetime(latest).date()
    if latest_day == day and requested.time() >= SESSION_OPEN:
        if requested.time() <= SESSION_LAST_MINUTE:
            return ResolvedMinute(requested, requested, "")
        shown = datetime.combine(day, SESSION_LAST_MINUTE, tzinfo=IST)
        return ResolvedMinute(requested, shown, f"asked {_label(requested)}: after the close")
    if latest_day == day:  # before the open of a trading day: the previous trading day
        before = last_candle_at_or_before(ist_epoch(day, time(0, 0)) - 1)
        if before is None:
            return ResolvedMinute(requested, None, "no stored data before this day's open")
        latest_day = ist_datetime(before).date()
        reason = "before the open"
    else:
        reason = "not a trading day in the stored data"
    shown = datetime.combine(latest_day, SESSION_LAST_MINUTE, tzinfo=IST)
    return ResolvedMinute(requested, shown, f"asked {_label(requested)}: {reason}")


def _label(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M IST")


def step_trading_day(minute: datetime, days: int, trading_days: list[date]) -> datetime:
    """The same wall time ``days`` trading days away (PgUp/PgDn), clamped to the known days."""
    if not trading_days:
        return minute
    day = minute.date()
    index = next((i for i, d in enumerate(trading_days) if d >= day), len(trading_days) - 1)
    if trading_days[index] != day and days > 0:
        index -= 1
    target = trading_days[max(0, min(len(trading_days) - 1, index + days))]
    return datetime.combine(target, minute.timetz())


def step_minute(minute: datetime, minutes: int, trading_days: list[date]) -> datetime:
    """One session minute on or back (←/→); past the close/open, the next/previous trading day."""
    moved = minute + timedelta(minutes=minutes)
    if moved.time() > SESSION_LAST_MINUTE or moved.date() > minute.date():
        later = [d for d in trading_days if d > minute.date()]
        if not later:
            return datetime.combine(minute.date(), SESSION_LAST_MINUTE, tzinfo=IST)
        return datetime.combine(later[0], SESSION_OPEN, tzinfo=IST)
    if moved.time() < SESSION_OPEN or moved.date() < minute.date():
        earlier = [d for d in trading_days if d < minute.date()]
        if not earlier:
            return datetime.combine(minute.date(), SESSION_OPEN, tzinfo=IST)
        return datetime.combine(earlier[-1], SESSION_LAST_MINUTE, tzinfo=IST)
    return moved
