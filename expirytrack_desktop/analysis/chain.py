"""The option chain of one expiry as it stood at any past minute, from the stored 1-minute candles.

Definitions (the docs and ``expirytrack chain --help`` say the same):

- LTP: close of the contract's last 1-minute candle at or before the minute (earlier days too).
- volume: sum of the contract's candle volumes on that day up to and including the minute.
- OI: that last candle's OI; OI change: OI minus the OI of that day's first candle (0 when the
  contract has not traded yet that day, empty when it never traded).
- forward: the same-expiry future's close at that minute when the future traded that day, else
  put-call parity ``K + e^{rT} (C - P)`` at the strike where ``|C - P|`` is smallest among strikes
  whose call and put both traded that day.
- time to expiry: years of 365 days from the end of the minute to 15:30 IST on the expiry day.
- IV and greeks: Black-76 on that forward (:mod:`.black76`), empty where no IV exists.
- ATM: the strike nearest the forward; PCR: put OI / call OI; max pain: the strike at which the
  options' total intrinsic value at expiry, weighted by OI, is smallest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time

from expirytrack_desktop.analysis import black76
from expirytrack_desktop.analysis.candles import CandleSource, ContractInfo, QuoteRow
from expirytrack_desktop.analysis.minutes import (
    SESSION_CLOSE,
    ResolvedMinute,
    day_start,
    ist_epoch,
    resolve_minute,
)
from expirytrack_desktop.timeutil import IST

YEAR_SECONDS = 365.0 * 86_400
DEFAULT_RATE = 0.065  # ~ the 91-day Treasury bill yield, 2025; a setting (risk_free_rate)


class ChainError(ValueError):
    """The chain cannot be built: unknown underlying or expiry, nothing stored."""


@dataclass(frozen=True, slots=True)
class Side:
    """One contract (CE or PE) of a strike at the minute."""

    contract_id: int
    symbol: str
    ltp: float | None = None
    last_ts: int | None = None
    volume: int = 0
    oi: int | None = None
    oi_change: int | None = None
    iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None

    @property
    def traded_today(self) -> bool:
        return self.oi_change is not None and self.volume > 0


@dataclass(frozen=True, slots=True)
class ChainRow:
    strike: float
    ce: Side | None
    pe: Side | None


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    underlying_key: str
    expiry: date
    when: ResolvedMinute
    rate: float
    forward: float | None = None
    forward_source: str = ""  # "future" | "parity" | ""
    t_years: float | None = None
    rows: list[ChainRow] = field(default_factory=list)
    atm_strike: float | None = None
    pcr: float | None = None
    max_pain: float | None = None

    @property
    def empty(self) -> bool:
        return self.when.minute is None


@dataclass(frozen=True, slots=True)
class _Quote:
    last_ts: int | None
    close: float | None
    oi: int | None
    volume: int
    first_oi: int | None


def time_to_expiry(minute: datetime, expiry: date) -> float:
    """Years (365 days) from the end of ``minute`` to 15:30 IST on the expiry day."""
    end_of_minute = int(minute.timestamp()) + 60
    return (ist_epoch(expiry, SESSION_CLOSE) - end_of_minute) / YEAR_SECONDS


def build_chain(
    source: CandleSource,
    underlying_key: str,
    expiry: date,
    at: datetime,
    *,
    rate: float = DEFAULT_RATE,
    previous: ChainSnapshot | None = None,
) -> ChainSnapshot:
    """The chain of ``underlying_key``/``expiry`` at IST minute ``at`` (see module docstring).

    ``previous`` (the snapshot a minute step comes from) seeds each contract's IV solve.
    """
    contracts = source.contracts(underlying_key, expiry)
    if contracts is None:
        raise ChainError(f"no expiry {expiry} of {underlying_key} in the database")
    ids = [c.contract_id for c in contracts]
    when = resolve_minute(at, lambda ts: source.last_ts_at_or_before(ids, ts))
    if when.ts is None:
        return ChainSnapshot(underlying_key, expiry, when, rate)
    minute_ts = when.ts
    quotes = source.quotes(ids, day_start(minute_ts), minute_ts)
    assert when.minute is not None
    t_years = time_to_expiry(when.minute, expiry)

    future = next((c for c in contracts if c.contract_type == "FUT"), None)
    by_strike: dict[float, dict[str, tuple[int, str, _Quote]]] = {}
    for c in contracts:
        if c.contract_type in ("CE", "PE") and c.strike is not None:
            by_strike.setdefault(c.strike, {})[c.contract_type] = (
                c.contract_id,
                c.symbol,
                _quote(quotes.get(c.contract_id)),
            )
    calls = {k: v["CE"][0] for k, v in by_strike.items() if "CE" in v}
    puts = {k: v["PE"][0] for k, v in by_strike.items() if "PE" in v}
    forward, forward_source = forward_from(future, quotes, calls, puts, t_years, rate)

    guesses = _ivs(previous) if previous and previous.expiry == expiry else {}
    rows: list[ChainRow] = []
    for strike in sorted(by_strike):
        sides = by_strike[strike]
        rows.append(
            ChainRow(
                strike,
                _side(sides.get("CE"), True, strike, forward, t_years, rate, guesses),
                _side(sides.get("PE"), False, strike, forward, t_years, rate, guesses),
            )
        )
    return ChainSnapshot(
        underlying_key,
        expiry,
        when,
        rate,
        forward=forward,
        forward_source=forward_source,
        t_years=t_years,
        rows=rows,
        atm_strike=_atm(rows, forward),
        pcr=_pcr(rows),
        max_pain=_max_pain(rows),
    )


def _quote(raw: QuoteRow | None) -> _Quote:
    if raw is None:
        return _Quote(None, None, None, 0, None)
    last_ts, close, oi, volume, first_oi = raw
    return _Quote(last_ts, close, oi, volume, first_oi)


def forward_from(
    future: ContractInfo | None,
    quotes: dict[int, QuoteRow],
    calls: dict[float, int],
    puts: dict[float, int],
    t_years: float,
    rate: float,
) -> tuple[float | None, str]:
    """The forward at a minute and where it came from ("future" | "parity" | "").

    The future's LTP when it traded that day; else put-call parity at the strike whose call
    and put both traded that day and are closest in price.
    """
    if future is not None:
        q = quotes.get(future.contract_id)
        if q is not None and q[4] is not None:  # traded that day
            return q[1], "future"
    best: tuple[float, float] | None = None  # (|C-P|, forward)
    growth = math.exp(rate * max(t_years, 0.0))
    for strike in sorted(set(calls) & set(puts)):
        ce, pe = quotes.get(calls[strike]), quotes.get(puts[strike])
        if ce is None or pe is None or ce[4] is None or pe[4] is None:
            continue
        gap = abs(ce[1] - pe[1])
        if best is None or gap < best[0]:
            best = (gap, strike + growth * (ce[1] - pe[1]))
    return (best[1], "parity") if best else (None, "")


def _side(
    entry: tuple[int, str, _Quote] | None,
    is_call: bool,
    strike: float,
    forward: float | None,
    t_years: float,
    rate: float,
    guesses: dict[int, float],
) -> Side | None:
    if entry is None:
        return None
    contract_id, symbol, q = entry
    if q.close is None:
        return Side(contract_id, symbol)
    oi_change = (q.oi - q.first_oi) if (q.first_oi is not None and q.oi is not None) else 0
    iv = None
    if forward is not None and forward > 0:
        iv = black76.implied_vol(
            q.close, forward, strike, t_years, rate, is_call, guesses.get(contract_id)
        )
    g = black76.greeks(forward, strike, t_years, rate, iv, is_call) if iv and forward else None
    return Side(
        contract_id,
        symbol,
        ltp=q.close,
        last_ts=q.last_ts,
        volume=q.volume,
        oi=q.oi,
        oi_change=oi_change,
        iv=iv,
        delta=g.delta if g else None,
        gamma=g.gamma if g else None,
        theta=g.theta if g else None,
        vega=g.vega if g else None,
    )


def _ivs(snap: ChainSnapshot) -> dict[int, float]:
    return {
        side.contract_id: side.iv
        for row in snap.rows
        for side in (row.ce, row.pe)
        if side is not None and side.iv is not None
    }


def _atm(rows: list[ChainRow], forward: float | None) -> float | None:
    if forward is None or not rows:
        return None
    return min(rows, key=lambda r: (abs(r.strike - forward), r.strike)).strike


def _pcr(rows: list[ChainRow]) -> float | None:
    ce = sum(r.ce.oi or 0 for r in rows if r.ce)
    pe = sum(r.pe.oi or 0 for r in rows if r.pe)
    return pe / ce if ce else None


def _max_pain(rows: list[ChainRow]) -> float | None:
    """The settlement strike minimising the OI-weighted intrinsic value paid to option holders.

    Running sums make it O(strikes): at strike S the calls below pay ``S * sum(c) - sum(c * k)``
    and the puts above pay ``sum(p * k) - S * sum(p)``.
    """
    strikes = [r.strike for r in rows]
    calls = [float((r.ce.oi or 0) if r.ce else 0) for r in rows]
    puts = [float((r.pe.oi or 0) if r.pe else 0) for r in rows]
    if not any(calls) and not any(puts):
        return None
    put_oi, put_weighted = sum(puts), sum(p * k for p, k in zip(puts, strikes, strict=True))
    call_oi = call_weighted = 0.0
    best: tuple[float, float] | None = None
    for k, c, p in zip(strikes, calls, puts, strict=True):
        call_oi += c  # calls at or below k (a call at k pays nothing at k)
        call_weighted += c * k
        pain = (k * call_oi - call_weighted) + (put_weighted - k * put_oi)
        if best is None or pain < best[0]:
            best = (pain, k)
        put_oi -= p  # puts at k pay nothing at k; only those above remain
        put_weighted -= p * k
    return best[1] if best else None


def at_ist(day: date, hhmm: str) -> datetime:
    """``--at`` helper: an IST wall time from a date and ``HH:MM``."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=IST)
