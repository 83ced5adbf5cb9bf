"""Date spans for candle requests: ask for the widest span believed allowed, learn the cap.

The per-request span cap of the expired-candle endpoint is undocumented. Some callers get 90
days of 1-minute data in one call; Upstox's other historical API caps 1-15 minute intervals
at one month and larger ones at a quarter. Requests are the scarce resource (2000 per 30
minutes), so we start wide (93 days, so that the default history window of 3 months, 90-93
inclusive days, is one request; 365 for daily candles) and, on ``UDAPI1148``, jump straight
to the next usual cap (30 days for 1-15 minutes, 90 then 30 for larger intervals) before
halving. A wrong guess costs one rejected request, once: the caller persists what was learned
(``on_learn``) and passes it back as ``initial_caps`` next time.

Spans are counted in inclusive calendar days ([d, d] is 1 day). Sub-windows are day-disjoint
and candles are keyed by timestamp, so nothing is lost or duplicated across window edges.
``fetch_window`` can hand each accepted sub-window to the caller as it arrives (parsed candles,
or the decoded answer rows for the store's fast path), so the caller can commit it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol

from ..timeutil import IST
from .candles import CandleRows
from .errors import InvalidDateRangeError
from .models import INTERVAL_MINUTES, Candle

# 93 = the longest default history window (3 months before an expiry: 90-93 inclusive days).
QUARTER_DAYS = 93
DEFAULT_CAPS: dict[str, int] = {
    "1minute": QUARTER_DAYS,
    "3minute": QUARTER_DAYS,
    "5minute": QUARTER_DAYS,
    "15minute": QUARTER_DAYS,
    "30minute": QUARTER_DAYS,
    "day": 365,
}
# Usual caps to fall back to after a rejection, widest first, before plain halving.
_MINUTE_LADDER = (30,)
_WIDE_LADDER = (90, 30)


def _ladder(interval: str) -> tuple[int, ...]:
    return _MINUTE_LADDER if INTERVAL_MINUTES.get(interval, 1) <= 15 else _WIDE_LADDER


def planning_cap(interval: str) -> int:
    """Days per request an estimate assumes before the cap is learned: the usual cap the
    first rejection falls back to (30 days for 1-15 minutes). Planning with the widest span
    asked would promise a quarter of the requests a one-month cap needs."""
    return min(DEFAULT_CAPS.get(interval, QUARTER_DAYS), _ladder(interval)[0])


class _CandleSource(Protocol):
    async def get_candles(
        self, expired_key: str, interval: str, from_date: date, to_date: date
    ) -> list[Candle]: ...


class _RowCandleSource(Protocol):
    async def get_candle_rows(
        self, expired_key: str, interval: str, from_date: date, to_date: date
    ) -> CandleRows: ...


class SpanPolicy:
    """Believed span caps per interval, shared by every fetch of a run (and learned by them)."""

    def __init__(
        self,
        initial_caps: dict[str, int] | None = None,
        on_learn: Callable[[str, int], None] | None = None,
        on_confirm: Callable[[str, int], None] | None = None,
    ) -> None:
        self._caps = dict(DEFAULT_CAPS)
        for interval, cap in (initial_caps or {}).items():
            if int(cap) >= 1:
                self._caps[interval] = int(cap)
        self._on_learn = on_learn
        self._on_confirm = on_confirm  # a wider span than before was accepted
        self._confirmed: dict[str, int] = {}  # widest span accepted in this process
        self._probe_locks: dict[str, asyncio.Lock] = {}

    def cap_days(self, interval: str) -> int:
        """Widest span (inclusive days) believed allowed for ``interval``."""
        return self._caps.get(interval, 30)

    def learn(self, interval: str, rejected_span: int) -> int:
        """A span of ``rejected_span`` days was refused: lower the cap; returns the new cap."""
        current = self.cap_days(interval)
        if rejected_span > current:  # a stale rejection after someone else learned already
            return current
        below = [c for c in _ladder(interval) if c < rejected_span]
        new = below[0] if below else max(1, rejected_span // 2)
        new = max(new, min(self._confirmed.get(interval, 0), rejected_span - 1))
        self._caps[interval] = new
        if self._on_learn is not None:
            self._on_learn(interval, new)
        return new

    def confirm(self, interval: str, span: int) -> None:
        if span > self._confirmed.get(interval, 0):
            self._confirmed[interval] = span
            if self._on_confirm is not None:
                self._on_confirm(interval, span)

    @asynccontextmanager
    async def probing(self, interval: str, span: int) -> AsyncIterator[None]:
        """Serialise requests wider than any span accepted so far, so that concurrent
        fetches waste at most one rejected request between them while the cap is unknown."""
        if span <= self._confirmed.get(interval, 0):
            yield
            return
        lock = self._probe_locks.setdefault(interval, asyncio.Lock())
        async with lock:
            yield


@dataclass(slots=True)
class SubWindow:
    """One accepted request: its inclusive dates and its answer."""

    from_date: date
    to_date: date
    candles: list[Candle]  # parsed path: ascending, unique, clipped to the sub-window
    rows: CandleRows | None  # raw path: the whole decoded answer (the store clips it)
    requests: int  # requests spent on it, rejected wider probes included
    rejected: int


@dataclass(slots=True)
class WindowFetch:
    candles: list[Candle]  # ascending, unique timestamps, within [from_date, to_date]
    requests: int  # candle requests made (rejected ones included; transport retries not)
    subwindows: list[tuple[date, date]] = field(default_factory=list)  # accepted, in order
    rejected: int = 0
    batches: list[CandleRows] = field(default_factory=list)  # raw path: one per sub-window


def _day_start(d: date) -> int:
    return int(datetime.combine(d, time(0, 0), IST).timestamp())


def _clip(candles: list[Candle], from_date: date, to_date: date) -> list[Candle]:
    lo, hi = _day_start(from_date), _day_start(to_date + timedelta(days=1))
    by_ts: dict[int, Candle] = {}
    for candle in candles:
        if lo <= candle[0] < hi:
            by_ts.setdefault(candle[0], candle)
    return [by_ts[ts] for ts in sorted(by_ts)]


async def fetch_window(
    client: _CandleSource | _RowCandleSource,
    expired_key: str,
    interval: str,
    from_date: date,
    to_date: date,
    policy: SpanPolicy,
    *,
    raw: bool = False,
    on_subwindow: Callable[[SubWindow], Awaitable[None]] | None = None,
) -> WindowFetch:
    """All candles of ``expired_key`` in [from_date, to_date], in spans the server accepts.

    ``raw``: ask ``client.get_candle_rows`` and collect its answers (:class:`CandleRows`,
    unclipped) instead of candles.
    ``on_subwindow``: awaited with each accepted sub-window before the next request (so the
    caller can commit it); its candles/body are then not kept in the result. An exception
    (from the client or the callback) propagates; sub-windows handed over before it stay
    handed over.
    """
    if to_date < from_date:
        raise ValueError(f"to_date {to_date} is before from_date {from_date}")
    parts: list[Candle] = []
    result = WindowFetch(candles=[], requests=0)
    cursor = from_date
    spent = rejected = 0
    while cursor <= to_date:
        span = min(policy.cap_days(interval), (to_date - cursor).days + 1)
        async with policy.probing(interval, span):
            # The cap may have been lowered while we waited for the probe lock.
            span = min(span, policy.cap_days(interval))
            end = cursor + timedelta(days=span - 1)
            result.requests += 1
            spent += 1
            try:
                if raw:
                    answer: list[Candle] | CandleRows = await client.get_candle_rows(  # type: ignore[union-attr]
                        expired_key, interval, cursor, end
                    )
                else:
                    answer = await client.get_candles(expired_key, interval, cursor, end)  # type: ignore[union-attr]
            except InvalidDateRangeError:
                if span <= 1:
                    raise
                result.rejected += 1
                rejected += 1
                policy.learn(interval, span)
                continue
            policy.confirm(interval, span)
        if isinstance(answer, CandleRows):
            sub = SubWindow(cursor, end, [], answer, spent, rejected)
        else:
            sub = SubWindow(cursor, end, _clip(answer, cursor, end), None, spent, rejected)
        spent = rejected = 0
        result.subwindows.append((cursor, end))
        if on_subwindow is not None:
            await on_subwindow(sub)
        elif sub.rows is not None:
            result.batches.append(sub.rows)
        else:
            parts.extend(sub.candles)  # day-disjoint, each ascending: the whole stays sorted
        cursor = end + timedelta(days=1)
    result.candles = parts
    return result
