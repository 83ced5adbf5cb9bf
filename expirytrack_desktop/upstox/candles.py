"""Candle answers -> rows for the store: one typed decode in C, exact or refused.

``msgspec`` checks a whole answer against the exact shape the API documents (status,
``data.candles`` of ``[timestamp, open, high, low, close, volume, oi]`` with numeric prices
and integer volume and open interest) while it decodes, so the hot path builds each row once
and needs no Python check per value. The timestamps stay as the API's text when every one of
them is ``YYYY-MM-DDTHH:MM:SS+05:30`` (25 characters, the IST offset, a real day): SQLite's
``unixepoch`` converts them as it inserts (cheaper than ``datetime`` per row, and it refuses an
impossible time of day), and their first ten characters are their IST day, which lets the
store clip a window by comparing strings.

Anything else the API might send (a missing or null open interest, a fractional volume, other
offsets) goes through :func:`candle_from_row`, the lenient, checked Python reading; a value
that cannot be read at all raises :class:`CandleBodyError` and nothing is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

import msgspec

from ..timeutil import day_start_epoch, parse_ts
from .models import Candle

# "2025-05-22T09:15:00+05:30": 25 characters, the IST day first, the offset last
ISO_LENGTH = 25
_OFFSET_END = b'+05:30"'  # the end of every time in the body
_OFFSET_END_TEXT = _OFFSET_END.decode()

# A price that is not a whole number of paise is written with a third decimal or an exponent;
# without either, each price's decimal text is k/100 and the store keeps it as the integer k.
_MORE_THAN_PAISE = re.compile(rb"\.[0-9]{3}")

_Stamp = Annotated[str, msgspec.Meta(min_length=ISO_LENGTH, max_length=ISO_LENGTH)]


class _ExactData(msgspec.Struct, forbid_unknown_fields=True):
    candles: list[tuple[_Stamp, float, float, float, float, int, int]]


class _Exact(msgspec.Struct, forbid_unknown_fields=True):
    status: str
    data: _ExactData


class _LooseData(msgspec.Struct):
    candles: list[list[Any]]


class _Loose(msgspec.Struct):
    status: str
    data: _LooseData


_exact = msgspec.json.Decoder(_Exact)
_loose = msgspec.json.Decoder(_Loose)


class CandleBodyError(ValueError):
    """A candle answer that is not a complete success document (``complete`` False: the
    client retries it like a 5xx), or is one but holds a candle that cannot be read
    (``complete`` True: the message says which one and why)."""

    def __init__(self, message: str, *, complete: bool = False) -> None:
        super().__init__(message)
        self.complete = complete


@dataclass(frozen=True, slots=True)
class CandleRows:
    """The candles of one answer, in the API's order (newest first), duplicates included.

    ``iso``: every row's time is the canonical ``+05:30`` text (the store converts it with
    ``unixepoch``); otherwise every row is a checked :data:`Candle` (epoch seconds).
    ``paise``: every price was written with at most two decimals and no exponent, so each is a
    whole number of paise (the store converts them in SQL; otherwise it checks each price).
    """

    rows: list[tuple[Any, ...]]
    iso: bool
    days: frozenset[date] = frozenset()  # iso: the (IST) days the rows fall on
    paise: bool = False

    def in_days(self, first: date, last: date) -> CandleRows:
        """Only the rows of days ``first``..``last`` (inclusive, IST)."""
        if self.iso:
            if all(first <= d <= last for d in self.days):
                return self
            lo, hi = first.isoformat(), (last + timedelta(days=1)).isoformat()
            rows = [r for r in self.rows if lo <= r[0] < hi]
            days = frozenset(d for d in self.days if first <= d <= last)
            return CandleRows(rows, True, days, self.paise)
        lo_ts = day_start_epoch(first)
        hi_ts = day_start_epoch(last + timedelta(days=1))
        return CandleRows([r for r in self.rows if lo_ts <= r[0] < hi_ts], False)

    def __len__(self) -> int:
        return len(self.rows)

    def candles(self) -> list[Candle]:
        """As checked :data:`Candle` rows: ascending, the first occurrence of a repeated time
        (the slower, per-row reading, for callers that want Python values)."""
        by_ts: dict[int, Candle] = {}
        for row in self.rows:
            candle = (parse_ts(row[0]), *row[1:]) if self.iso else row
            by_ts.setdefault(candle[0], candle)
        return [by_ts[ts] for ts in sorted(by_ts)]


def candle_from_row(row: list[Any]) -> Candle:
    """The lenient reading of one API candle: a missing or null open interest is 0, a volume
    sent as ``1500.0`` is 1500; a fractional volume or open interest, a non-numeric value and
    a timestamp without an offset are refused (ValueError, TypeError or IndexError)."""
    oi = row[6] if len(row) > 6 and row[6] is not None else 0
    return (
        parse_ts(str(row[0])),
        float(row[1]),
        float(row[2]),
        float(row[3]),
        float(row[4]),
        _whole(row[5] or 0, "volume"),
        _whole(oi, "open interest"),
    )


def _whole(value: Any, what: str) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"fractional {what} {value!r}")
    return int(number)


def decode_candles(body: bytes | str) -> CandleRows:
    """Decode one candle answer. CandleBodyError if it is malformed, truncated, not a
    success, or holds a candle that cannot be read."""
    try:
        doc = _exact.decode(body)
    except msgspec.ValidationError:
        return _decode_loose(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise CandleBodyError(f"malformed candle JSON ({exc})") from None
    if doc.status != "success":
        raise CandleBodyError(f"candle answer with status {doc.status!r}")
    rows = doc.data.candles
    # Unknown fields are refused above, so the only strings are the status and the times:
    # one C-speed count tells that every time ends with the IST offset. Their days are then
    # checked here (SQLite's unixepoch would roll "02-31" over to March; it refuses a bad
    # time of day itself: NULL, refused by NOT NULL).
    ends = body.count(_OFFSET_END_TEXT) if isinstance(body, str) else body.count(_OFFSET_END)
    days = _days({r[0][:10] for r in rows}) if ends == len(rows) else None
    if days is None:
        return CandleRows(checked_rows(rows), iso=False)  # another offset or layout: read each
    return CandleRows(rows, True, days, _whole_paise(body))


def _whole_paise(body: bytes | str) -> bool:
    """True if no number in this (exactly shaped) answer has a third decimal or an exponent
    (searched between the candles' first ``[[`` and last ``]]``: memchr for the exponents)."""
    raw = body if isinstance(body, bytes | bytearray) else body.encode()
    start, end = raw.find(b"[["), raw.rfind(b"]]")
    if start < 0 or end < start:
        return False  # no candles, or written another way: the checked reading
    return (
        raw.find(b"e", start, end) < 0
        and raw.find(b"E", start, end) < 0
        and _MORE_THAN_PAISE.search(raw, start, end) is None
    )


def _days(texts: set[str]) -> frozenset[date] | None:
    """The days of these ``YYYY-MM-DD`` texts; None if one is not a real day so written."""
    try:
        days = frozenset(date.fromisoformat(t) for t in texts)
    except ValueError:
        return None
    return days if {d.isoformat() for d in days} == texts else None


def _decode_loose(body: bytes | str) -> CandleRows:
    try:
        doc = _loose.decode(body)
    except (
        msgspec.DecodeError,
        UnicodeDecodeError,
    ) as exc:  # ValidationError included: no status/candles array
        raise CandleBodyError(f"not a candle answer ({exc})") from None
    if doc.status != "success":
        raise CandleBodyError(f"candle answer with status {doc.status!r}")
    return CandleRows(checked_rows(doc.data.candles), iso=False)


def checked_rows(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Each row read by :func:`candle_from_row`; CandleBodyError names the first unreadable."""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(candle_from_row(list(row)))
        except (ValueError, TypeError, IndexError) as exc:
            raise CandleBodyError(f"candle {i} ({str(row)[:80]}): {exc}", complete=True) from None
    return out
