"""Trading calendar of the synthetic market: weekdays minus exchange holidays, expiry rules.

The holiday list approximates NSE's published trading holidays (weekend dates omitted); for
years outside it a handful of fixed national holidays is used, so any `today` works.
"""

from __future__ import annotations

from datetime import date, timedelta

_HOLIDAYS_BY_YEAR: dict[int, tuple[str, ...]] = {
    2024: (
        "01-22", "01-26", "03-08", "03-25", "03-29", "04-11", "04-17", "05-01", "05-20",
        "06-17", "07-17", "08-15", "10-02", "11-01", "11-15", "11-20", "12-25",
    ),
    2025: (
        "02-26", "03-14", "03-31", "04-10", "04-14", "04-18", "05-01", "08-15", "08-27",
        "10-02", "10-21", "10-22", "11-05", "12-25",
    ),
    2026: (
        "01-26", "03-03", "03-26", "03-31", "04-03", "04-14", "05-01", "05-28", "06-26",
        "09-14", "10-02", "10-20", "11-10", "11-24", "12-25",
    ),
}  # fmt: skip
_FIXED_HOLIDAYS = ("01-26", "05-01", "08-15", "10-02", "12-25")


def holidays(year: int) -> frozenset[date]:
    """Exchange holidays of ``year`` (weekdays only matter)."""
    days = _HOLIDAYS_BY_YEAR.get(year, _FIXED_HOLIDAYS)
    return frozenset(date(year, int(d[:2]), int(d[3:])) for d in days)


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in holidays(d.year)


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in ``[start, end]``, ascending."""
    out = []
    d = start
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def previous_trading_day(d: date) -> date:
    """``d`` itself when it trades, else the closest earlier trading day (expiry shift rule)."""
    while not is_trading_day(d):
        d -= timedelta(days=1)
    return d


# Expiry weekday (Mon=0) by exchange and date. NSE moved index expiries from Thursday to
# Tuesday on 2025-09-01; BSE (SENSEX) went Friday -> Tuesday (2025-01) -> Thursday (2025-09).
def expiry_weekday(exchange: str, d: date) -> int:
    if exchange == "BSE":
        if d < date(2025, 1, 1):
            return 4
        return 1 if d < date(2025, 9, 1) else 3
    return 3 if d < date(2025, 9, 1) else 1


def monthly_expiry(exchange: str, year: int, month: int) -> date:
    """Last expiry weekday of the month, moved back over holidays."""
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    while d.weekday() != expiry_weekday(exchange, d):
        d -= timedelta(days=1)
    return previous_trading_day(d)


def weekly_expiries(exchange: str, start: date, end: date) -> list[date]:
    """Nominal weekly expiry dates in ``[start, end]``, moved back over holidays."""
    out = []
    d = start
    while d <= end:
        if d.weekday() == expiry_weekday(exchange, d):
            out.append(previous_trading_day(d))
        d += timedelta(days=1)
    return out
