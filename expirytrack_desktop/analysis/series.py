"""Series for the chart: longer bars from stored 1-minute candles, and straddle premiums.

Bars are aligned to the session open (09:15 IST), as exchanges and Upstox align them: a
5-minute bar covers 09:15-09:19, 09:20-09:24, …; a day bar covers one IST date. A bucket with
no 1-minute candle produces no bar, so missing minutes stay visible as gaps on a time axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from expirytrack_desktop.analysis.candles import Candle, CandleSource
from expirytrack_desktop.analysis.chain import (
    DEFAULT_RATE,
    ChainError,
    forward_from,
    time_to_expiry,
)
from expirytrack_desktop.analysis.minutes import (
    SESSION_LAST_MINUTE,
    SESSION_OPEN,
    ist_epoch,
)
from expirytrack_desktop.timeutil import IST, IST_OFFSET_SECONDS

# Interval choices of the chart: minutes per bar (1440 = one day)
BAR_MINUTES = (1, 3, 5, 15, 30, 1440)
_OPEN_SECONDS = SESSION_OPEN.hour * 3600 + SESSION_OPEN.minute * 60


def bucket_start(ts: int, minutes: int) -> int:
    """Epoch second at which the ``minutes`` bar holding the minute ``ts`` starts."""
    local = ts + IST_OFFSET_SECONDS
    midnight = local - local % 86_400
    if minutes >= 1440:
        return midnight - IST_OFFSET_SECONDS
    since_open = local - midnight - _OPEN_SECONDS
    width = minutes * 60
    return midnight + _OPEN_SECONDS + (since_open // width) * width - IST_OFFSET_SECONDS


def aggregate(candles: list[Candle], minutes: int) -> list[Candle]:
    """``minutes``-bars from ascending 1-minute candles: first open, max high, min low, last
    close, summed volume, last OI. ``minutes == 1`` returns the candles unchanged."""
    if minutes <= 1:
        return list(candles)
    bars: list[Candle] = []
    current: list[Candle] = []
    start = None
    for c in candles:
        b = bucket_start(c.ts, minutes)
        if b != start and current:
            bars.append(_bar(start, current))  # type: ignore[arg-type]
            current = []
        start = b
        current.append(c)
    if current:
        bars.append(_bar(start, current))  # type: ignore[arg-type]
    return bars


def _bar(start: int, cs: list[Candle]) -> Candle:
    return Candle(
        ts=start,
        open=cs[0].open,
        high=max(c.high for c in cs),
        low=min(c.low for c in cs),
        close=cs[-1].close,
        volume=sum(c.volume for c in cs),
        oi=cs[-1].oi,
    )


@dataclass(frozen=True, slots=True)
class StraddlePoint:
    ts: int  # the minute (epoch seconds)
    ce_strike: float
    pe_strike: float
    ce: float  # the call's LTP at that minute
    pe: float  # the put's LTP at that minute

    @property
    def premium(self) -> float:
        return self.ce + self.pe


def straddle_series(
    source: CandleSource,
    underlying_key: str,
    expiry: date,
    day: date,
    *,
    ce_strike: float | None = None,
    pe_strike: float | None = None,
    rate: float = DEFAULT_RATE,
) -> list[StraddlePoint]:
    """Combined premium of a call and a put for every session minute of ``day``.

    Fixed strikes (a straddle when equal, a strangle when not), or with both ``None`` the ATM
    strike re-chosen each minute: nearest the chain's forward among the strikes whose call and
    put both have a price. LTPs carry forward from earlier candles (as in the option chain); a
    minute where a side has no price yet is left out.
    """
    contracts = source.contracts(underlying_key, expiry)
    if contracts is None:
        raise ChainError(f"no expiry {expiry} of {underlying_key} in the database")
    if (ce_strike is None) != (pe_strike is None):
        raise ValueError("give both strikes, or neither for the ATM straddle")
    ids = [c.contract_id for c in contracts]
    calls: dict[float, int] = {}
    puts: dict[float, int] = {}
    for c in contracts:
        if c.strike is not None and c.contract_type in ("CE", "PE"):
            (calls if c.contract_type == "CE" else puts)[c.strike] = c.contract_id
    if ce_strike is not None and (ce_strike not in calls or pe_strike not in puts):
        raise ValueError(f"no CE {ce_strike} / PE {pe_strike} contract in expiry {expiry}")
    future = next((c for c in contracts if c.contract_type == "FUT"), None)
    day0 = ist_epoch(day, time(0, 0))
    first = ist_epoch(day, SESSION_OPEN)
    last = ist_epoch(day, SESSION_LAST_MINUTE)
    points: list[StraddlePoint] = []
    both = sorted(set(calls) & set(puts))
    for ts in range(first, last + 1, 60):
        quotes = source.quotes(ids, day0, ts)
        if ce_strike is None or pe_strike is None:
            minute = datetime.fromtimestamp(ts, IST)
            t_years = time_to_expiry(minute, expiry)
            fwd, _ = forward_from(future, quotes, calls, puts, t_years, rate)
            priced = [k for k in both if calls[k] in quotes and puts[k] in quotes]
            if fwd is None or not priced:
                continue
            kc = kp = min(priced, key=lambda s: (abs(s - fwd), s))
        else:
            kc, kp = ce_strike, pe_strike
        qc, qp = quotes.get(calls[kc]), quotes.get(puts[kp])
        if qc is None or qp is None:
            continue
        points.append(StraddlePoint(ts, kc, kp, qc[1], qp[1]))
    return points
