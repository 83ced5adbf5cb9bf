"""India Standard Time helpers.

IST has had no daylight saving since 1945, so a fixed +05:30 offset is exact and needs no
tz database (which Windows Python lacks without tzdata).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
IST_OFFSET_SECONDS = 19800


def parse_ts(text: str) -> int:
    """ISO 8601 timestamp with an explicit offset -> epoch seconds.

    A timestamp without an offset is refused (ValueError), never read in the machine's local
    zone: the API always sends ``+05:30``, and guessing would shift candles silently.
    """
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError(f"timestamp without a UTC offset: {text!r}")
    return int(moment.timestamp())


def day_start_epoch(day: date) -> int:
    """Epoch seconds of 00:00 IST on ``day``."""
    return (day - date(1970, 1, 1)).days * 86400 - IST_OFFSET_SECONDS


def ist_iso(epoch: int) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS+05:30`` as the API and exports write it."""
    return datetime.fromtimestamp(epoch, IST).isoformat()


def ist_date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, IST).date()


def now_utc() -> datetime:
    return datetime.now(UTC)
