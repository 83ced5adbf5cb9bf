"""India Standard Time helpers.

IST has had no daylight saving since 1945, so a fixed +05:30 offset is exact and needs no
tz database (which Windows Python lacks without tzdata).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
IST_OFFSET_SECONDS = 19800


def parse_ts(text: str) -> int:
    """ISO 8601 timestamp (any offset) -> epoch seconds."""
    return int(datetime.fromisoformat(text).timestamp())


def ist_iso(epoch: int) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS+05:30`` as the API and exports write it."""
    return datetime.fromtimestamp(epoch, IST).isoformat()


def ist_date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, IST).date()


def now_utc() -> datetime:
    return datetime.now(UTC)
