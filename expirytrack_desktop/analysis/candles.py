"""Reading stored candles for analysis: one place that knows the candle table's layout.

The chain, the chart and the quality views read through :class:`CandleSource`, so a change in
how candles are stored (e.g. prices as integer paise) is made here once. Reads go through
``Database.execute`` (its lock), never on the Qt thread's hot path for large ranges.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from expirytrack_desktop.store import Database
from expirytrack_desktop.store.prices import rupees_sql

# last_ts, close, oi, volume of the day up to the minute, first OI of the day (None: no trade)
QuoteRow = tuple[int, float, int, int, "int | None"]


@dataclass(frozen=True, slots=True)
class ContractInfo:
    contract_id: int
    contract_type: str  # CE | PE | FUT
    strike: float | None
    symbol: str  # OpenAlgo symbol (or the trading symbol when none)


@dataclass(frozen=True, slots=True)
class Candle:
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int


class CandleSource(Protocol):
    def contracts(self, underlying_key: str, expiry: date) -> list[ContractInfo] | None: ...

    def last_ts_at_or_before(self, contract_ids: list[int], ts: int) -> int | None: ...

    def quotes(self, contract_ids: list[int], day_start: int, ts: int) -> dict[int, QuoteRow]: ...

    def candles(
        self, contract_id: int, start: int | None = None, end: int | None = None
    ) -> list[Candle]: ...


# SQL expressions for a candle row's prices in rupees (the storage layout lives here only)
_RUPEES = rupees_sql("k")  # store/prices.py: integer paise underneath
_PRICES = ", ".join(_RUPEES[c] for c in ("open", "high", "low", "close"))
_CLOSE = _RUPEES["close"]


class DayQuotes:
    """A day's candles of a set of contracts in memory: any minute of that day in microseconds.

    Stepping a chain minute by minute (the window's time slider) would otherwise sum each
    contract's volume from the open again at every step; here each step is a binary search.
    """

    def __init__(self, prior: dict[int, QuoteRow], rows: list[tuple[int, int, float, int, int]]):
        self.prior = prior  # last candle before the day (its LTP and OI carry over)
        self.series: dict[int, tuple[list[int], list[float], list[int], list[int]]] = {}
        for cid, ts, close, volume, oi in rows:  # ordered by contract, then time
            ts_list, closes, ois, cumvol = self.series.setdefault(cid, ([], [], [], []))
            ts_list.append(ts)
            closes.append(close)
            ois.append(oi)
            cumvol.append((cumvol[-1] if cumvol else 0) + volume)

    def at(self, ts: int) -> dict[int, QuoteRow]:
        out = dict(self.prior)
        for cid, (ts_list, closes, ois, cumvol) in self.series.items():
            i = bisect_right(ts_list, ts) - 1
            if i >= 0:
                out[cid] = (ts_list[i], closes[i], ois[i], cumvol[i], ois[0])
        return out


class DbCandleSource:
    """:class:`CandleSource` over an open :class:`Database` (1-minute candles).

    ``cache=True`` (the window's viewer) keeps the last day's candles in memory and remembers
    which days have data, so a minute step costs no query; :meth:`clear_cache` after new data.
    """

    def __init__(self, db: Database, *, cache: bool = False) -> None:
        self.db = db
        self.cache = cache
        self._day: tuple[tuple[int, ...], int, DayQuotes] | None = None
        self._last_ts: dict[tuple[tuple[int, ...], int], int | None] = {}
        self._contracts: dict[tuple[str, date], list[ContractInfo] | None] = {}

    def clear_cache(self) -> None:
        self._day = None
        self._last_ts.clear()
        self._contracts.clear()

    def contracts(self, underlying_key: str, expiry: date) -> list[ContractInfo] | None:
        if not self.cache:
            return self._contracts_query(underlying_key, expiry)
        key = (underlying_key, expiry)
        if key not in self._contracts:
            self._contracts[key] = self._contracts_query(underlying_key, expiry)
        return self._contracts[key]

    def _contracts_query(self, underlying_key: str, expiry: date) -> list[ContractInfo] | None:
        found = self.db.execute(
            "SELECT e.id FROM expiry e JOIN underlying u ON u.id = e.underlying_id "
            "WHERE u.instrument_key = ? AND e.expiry_date = ?",
            (underlying_key, expiry.isoformat()),
        )
        if not found:
            return None
        rows = self.db.execute(
            "SELECT id, contract_type, strike_price, "
            "COALESCE(openalgo_symbol, trading_symbol, expired_key) "
            "FROM contract WHERE expiry_id = ? ORDER BY strike_price, contract_type",
            (found[0][0],),
        )
        return [ContractInfo(int(r[0]), str(r[1]), r[2], str(r[3])) for r in rows]

    def last_ts_at_or_before(self, contract_ids: list[int], ts: int) -> int | None:
        if not contract_ids:
            return None
        if self.cache:
            key = (tuple(contract_ids), ts)
            if key not in self._last_ts:
                self._last_ts[key] = self._last_ts_query(contract_ids, ts)
            return self._last_ts[key]
        return self._last_ts_query(contract_ids, ts)

    def _last_ts_query(self, contract_ids: list[int], ts: int) -> int | None:
        ids = ",".join(str(int(c)) for c in contract_ids)  # integers only: safe to inline
        row = self.db.execute(  # one index seek per contract (MAX over an IN list would scan)
            "SELECT MAX((SELECT MAX(ts) FROM candle WHERE contract_id = c.id AND interval = 1 "
            f"AND ts <= ?)) FROM contract c WHERE c.id IN ({ids})",
            (ts,),
        )
        return None if row[0][0] is None else int(row[0][0])

    def quotes(self, contract_ids: list[int], day_start: int, ts: int) -> dict[int, QuoteRow]:
        """Per contract: its last candle at or before ``ts`` and its day so far, in one query."""
        if not contract_ids:
            return {}
        if self.cache:
            ids = tuple(contract_ids)
            if self._day is None or self._day[:2] != (ids, day_start):
                self._day = (ids, day_start, self._load_day(contract_ids, day_start))
            return self._day[2].at(ts)
        return self._quotes_query(contract_ids, day_start, ts)

    def _load_day(self, contract_ids: list[int], day_start: int) -> DayQuotes:
        ids = ",".join(str(int(c)) for c in contract_ids)  # integers only: safe to inline
        rows = self.db.execute(
            f"SELECT k.contract_id, k.ts, {_CLOSE}, k.volume, k.oi FROM candle k "
            f"WHERE k.contract_id IN ({ids}) AND k.interval = 1 AND k.ts BETWEEN ? AND ? "
            "ORDER BY k.contract_id, k.ts",
            (day_start, day_start + 86_399),
        )
        prior = self._quotes_query(contract_ids, day_start, day_start - 1)
        return DayQuotes(
            prior, [(int(r[0]), int(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows]
        )

    def _quotes_query(
        self, contract_ids: list[int], day_start: int, ts: int
    ) -> dict[int, QuoteRow]:
        ids = ",".join(str(int(c)) for c in contract_ids)  # integers only: safe to inline
        rows = self.db.execute(
            f"""
            WITH last AS (
              SELECT c.id AS id,
                (SELECT MAX(ts) FROM candle WHERE contract_id = c.id AND interval = 1
                   AND ts <= ?1) AS last_ts
              FROM contract c WHERE c.id IN ({ids})
            )
            SELECT last.id, last.last_ts, {_CLOSE}, k.oi,
              (SELECT COALESCE(SUM(volume), 0) FROM candle WHERE contract_id = last.id
                 AND interval = 1 AND ts BETWEEN ?2 AND ?1),
              (SELECT oi FROM candle WHERE contract_id = last.id AND interval = 1
                 AND ts BETWEEN ?2 AND ?1 ORDER BY ts LIMIT 1)
            FROM last JOIN candle k
              ON k.contract_id = last.id AND k.interval = 1 AND k.ts = last.last_ts
            """,
            (ts, day_start),
        )
        return {int(r[0]): (int(r[1]), float(r[2]), int(r[3]), int(r[4]), r[5]) for r in rows}

    def candles(
        self, contract_id: int, start: int | None = None, end: int | None = None
    ) -> list[Candle]:
        rows = self.db.execute(
            f"SELECT k.ts, {_PRICES}, k.volume, k.oi FROM candle k WHERE k.contract_id = ? "
            "AND k.interval = 1 AND k.ts BETWEEN ? AND ? ORDER BY k.ts",
            (contract_id, start if start is not None else 0, end if end is not None else 2**62),
        )
        return [Candle(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), int(r[6])) for r in rows]
