"""Data quality of one expiry, contract by contract: what a quant checks before a backtest.

- missing minutes: session minutes (09:15-15:29) of the expiry's trading days — the days on
  which any of its contracts traded — from the contract's first stored day to its last, with no
  candle. Thin options miss many minutes genuinely (no trade, no candle); a future missing
  minutes, or any contract missing whole days, is worth a look;
- anomalies: OHLC that contradicts itself (low above open/close/high…), negative volume or OI,
  an OI jump of more than half in one minute;
- windows: the contract's fetch windows that failed, or that were never fetched inside the
  expiry's target range (``expirytrack verify`` reports the same for the whole database).

:func:`gap_runs` lists one contract's runs of missing minutes for the gaps timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from expirytrack_desktop.store import Database
from expirytrack_desktop.store.prices import rupees_sql
from expirytrack_desktop.timeutil import IST_OFFSET_SECONDS

SESSION_MINUTES = 375  # 09:15 ... 15:29
_OPEN = 9 * 3600 + 15 * 60
_LAST = 15 * 3600 + 29 * 60
_DAY = f"((k.ts + {IST_OFFSET_SECONDS}) / 86400)"
_TOD = f"((k.ts + {IST_OFFSET_SECONDS}) % 86400)"
_P = rupees_sql("k")  # store/prices.py: integer paise underneath
_OHLC_BAD = (
    f"({_P['low']} > {_P['high']} OR {_P['open']} > {_P['high']} OR {_P['open']} < {_P['low']} "
    f"OR {_P['close']} > {_P['high']} OR {_P['close']} < {_P['low']})"
)


@dataclass(frozen=True, slots=True)
class ContractQuality:
    contract_id: int
    symbol: str
    contract_type: str
    strike: float | None
    candles: int
    first_ts: int | None
    last_ts: int | None
    days_traded: int
    expected_minutes: int  # session minutes of the expiry's trading days in the contract's span
    ohlc_anomalies: int
    negative_values: int
    oi_jumps: int
    failed_windows: int

    @property
    def missing_minutes(self) -> int:
        return max(self.expected_minutes - self.candles, 0)

    @property
    def missing_pct(self) -> float | None:
        if not self.expected_minutes:
            return None
        return 100.0 * self.missing_minutes / self.expected_minutes

    @property
    def anomalies(self) -> int:
        return self.ohlc_anomalies + self.negative_values + self.oi_jumps


def expiry_quality(db: Database, underlying_key: str, expiry: date) -> list[ContractQuality]:
    """Per-contract quality of one expiry (1-minute candles), ordered future first, then strike."""
    found = db.execute(
        "SELECT e.id FROM expiry e JOIN underlying u ON u.id = e.underlying_id "
        "WHERE u.instrument_key = ? AND e.expiry_date = ?",
        (underlying_key, expiry.isoformat()),
    )
    if not found:
        return []
    expiry_id = int(found[0][0])
    # the expiry's trading days: any of its contracts traded (session minutes only)
    days = sorted(
        int(r[0])
        for r in db.execute(
            f"SELECT DISTINCT {_DAY} FROM candle k JOIN contract c ON c.id = k.contract_id "
            f"WHERE c.expiry_id = ? AND k.interval = 1 AND {_TOD} BETWEEN ? AND ?",
            (expiry_id, _OPEN, _LAST),
        )
    )
    rows = db.execute(
        f"""
        SELECT c.id, COALESCE(c.openalgo_symbol, c.trading_symbol, c.expired_key),
               c.contract_type, c.strike_price,
               count(k.ts), min(k.ts), max(k.ts), count(DISTINCT {_DAY}),
               COALESCE(sum({_OHLC_BAD}), 0),
               COALESCE(sum(k.volume < 0 OR k.oi < 0), 0),
               (SELECT count(*) FROM fetch_window w WHERE w.contract_id = c.id
                  AND w.state = 'failed')
        FROM contract c
        LEFT JOIN candle k ON k.contract_id = c.id AND k.interval = 1
        WHERE c.expiry_id = ?
        GROUP BY c.id
        ORDER BY c.contract_type = 'FUT' DESC, c.strike_price, c.contract_type
        """,
        (expiry_id,),
    )
    jumps = _oi_jumps(db, expiry_id)
    out = []
    for r in rows:
        first, last = r[5], r[6]
        span = 0
        if first is not None:
            d0 = (int(first) + IST_OFFSET_SECONDS) // 86400
            d1 = (int(last) + IST_OFFSET_SECONDS) // 86400
            span = sum(1 for d in days if d0 <= d <= d1)
        out.append(
            ContractQuality(
                contract_id=int(r[0]),
                symbol=str(r[1]),
                contract_type=str(r[2]),
                strike=r[3],
                candles=int(r[4]),
                first_ts=first,
                last_ts=last,
                days_traded=int(r[7]),
                expected_minutes=span * SESSION_MINUTES,
                ohlc_anomalies=int(r[8]),
                negative_values=int(r[9]),
                oi_jumps=jumps.get(int(r[0]), 0),
                failed_windows=int(r[10]),
            )
        )
    return out


def _oi_jumps(db: Database, expiry_id: int) -> dict[int, int]:
    """Minutes whose OI moved by more than half of the previous candle's OI (same day)."""
    rows = db.execute(
        f"""
        SELECT contract_id, count(*) FROM (
          SELECT k.contract_id, k.oi,
                 lag(k.oi) OVER w AS prev, {_DAY} AS day, lag({_DAY}) OVER w AS prev_day
          FROM candle k JOIN contract c ON c.id = k.contract_id
          WHERE c.expiry_id = ? AND k.interval = 1
          WINDOW w AS (PARTITION BY k.contract_id ORDER BY k.ts)
        )
        WHERE prev > 0 AND day = prev_day AND abs(oi - prev) * 2 > prev
        GROUP BY contract_id
        """,
        (expiry_id,),
    )
    return {int(r[0]): int(r[1]) for r in rows}


@dataclass(frozen=True, slots=True)
class GapRun:
    start_ts: int  # first missing minute
    minutes: int  # how many consecutive session minutes are missing


def gap_runs(db: Database, contract_id: int, trading_days: list[int] | None = None) -> list[GapRun]:
    """Runs of missing session minutes of one contract, from its first to its last stored day.

    ``trading_days`` (IST day numbers, epoch days) limits the days considered; by default the
    days the contract itself traded, so a thin contract's silent days are not counted as gaps
    unless the caller passes the expiry's trading days.
    """
    stamps = [
        int(r[0])
        for r in db.execute(
            f"SELECT k.ts FROM candle k WHERE k.contract_id = ? AND k.interval = 1 "
            f"AND {_TOD} BETWEEN ? AND ? ORDER BY k.ts",
            (contract_id, _OPEN, _LAST),
        )
    ]
    if not stamps:
        return []
    have = set(stamps)
    first_day = (stamps[0] + IST_OFFSET_SECONDS) // 86400
    last_day = (stamps[-1] + IST_OFFSET_SECONDS) // 86400
    days = (
        trading_days
        if trading_days is not None
        else sorted({(s + IST_OFFSET_SECONDS) // 86400 for s in stamps})
    )
    runs: list[GapRun] = []
    for day in days:
        if not first_day <= day <= last_day:
            continue
        base = day * 86400 - IST_OFFSET_SECONDS + _OPEN
        start: int | None = None
        for m in range(SESSION_MINUTES + 1):
            ts = base + 60 * m
            missing = m < SESSION_MINUTES and ts not in have
            if missing and start is None:
                start = ts
            elif not missing and start is not None:
                runs.append(GapRun(start, (ts - start) // 60))
                start = None
    return runs


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the gaps timeline draws for one contract: its expiry's trading days (IST day
    numbers), the contract's first and last stored day, and its runs of missing minutes on
    the expiry's trading days in that span (the minutes :class:`ContractQuality` counts)."""

    contract_id: int
    days: list[int]
    span: tuple[int, int] | None
    runs: list[GapRun]

    @property
    def missing_minutes(self) -> int:
        return sum(r.minutes for r in self.runs)


def contract_timeline(db: Database, contract_id: int) -> Timeline:
    days = [
        int(r[0])
        for r in db.execute(
            f"SELECT DISTINCT {_DAY} FROM candle k JOIN contract c ON c.id = k.contract_id "
            "WHERE c.expiry_id = (SELECT expiry_id FROM contract WHERE id = ?) "
            f"AND k.interval = 1 AND {_TOD} BETWEEN ? AND ? ORDER BY 1",
            (contract_id, _OPEN, _LAST),
        )
    ]
    ends = db.execute(
        "SELECT min(ts), max(ts) FROM candle WHERE contract_id = ? AND interval = 1",
        (contract_id,),
    )[0]
    if ends[0] is None:
        return Timeline(contract_id, days, None, [])
    span = tuple((int(t) + IST_OFFSET_SECONDS) // 86400 for t in ends)
    return Timeline(contract_id, days, (span[0], span[1]), gap_runs(db, contract_id, days))
