"""How candle prices are stored: whole paise as integers, exact both ways, and a side table for
the rare price that is not a whole number of paise.

A candle row (schema 4) holds ``close`` in paise and ``open``/``high``/``low`` as paise relative
to the close (usually a few ticks: one byte, or none for 0), so a 1-minute candle takes about
31 bytes instead of 55. A price ``p`` (the float the API's decimal text parses to) is stored as
``k = round(p * 100)`` only when ``k / 100 == p``: integer division by 100.0 is correctly
rounded, so it gives back exactly the float that the decimal text ``k/100`` parses to. Any
candle with a price that is not a whole number of paise (never seen from Upstox, whose ticks
are 5 paise and up, but not refused: expired data cannot be fetched again) keeps its four
prices as sent in ``candle_exact``, and its row in ``candle`` has NULL prices.

Readers never do this arithmetic themselves: the ``candle_rupees`` view (and the documented
``historical_data`` views built on it) gives rupee floats, and :data:`RUPEES` is its column
list for SQL written against the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

PAISE = 100

# The rupee prices of a candle row ``k`` (alias) as SQL: exact rows from integer paise, other
# rows from candle_exact (looked up only when the row's prices are NULL).
_EXACT = (
    "(SELECT x.{col} FROM candle_exact x WHERE x.contract_id = {k}.contract_id "
    "AND x.interval = {k}.interval AND x.ts = {k}.ts)"
)


def rupees_sql(k: str = "k") -> dict[str, str]:
    """``{"open": expr, "high": …, "low": …, "close": …}`` for candle alias ``k``."""
    out = {"close": f"coalesce({k}.close / 100.0, {_EXACT.format(col='close', k=k)})"}
    for col in ("open", "high", "low"):
        out[col] = f"coalesce(({k}.close + {k}.{col}) / 100.0, {_EXACT.format(col=col, k=k)})"
    return out


# Insert of one decoded API row (ts text, open, high, low, close, volume, oi) whose four
# prices are known to be whole paise (``CandleRows.paise``): SQLite converts as it inserts
# (``round`` gives a whole REAL; the columns' INTEGER affinity stores it as an integer).
# ``{cid}``/``{iv}``/``{ts}`` are filled in by the caller (ints and the time expression).
FAST_INSERT = (
    "INSERT OR REPLACE INTO candle(contract_id, interval, ts, close, open, high, low, volume, "
    "oi) VALUES ({cid}, {iv}, {ts}, round(?5 * 100), round((?2 - ?5) * 100), "
    "round((?3 - ?5) * 100), round((?4 - ?5) * 100), ?6, ?7)"
)
ROW_INSERT = (
    "INSERT OR REPLACE INTO candle(contract_id, interval, ts, close, open, high, low, volume, "
    "oi) VALUES ({cid}, {iv}, ?, ?, ?, ?, ?, ?, ?)"
)
EXACT_INSERT = (
    "INSERT OR REPLACE INTO candle_exact(contract_id, interval, ts, open, high, low, close) "
    "VALUES ({cid}, {iv}, ?, ?, ?, ?, ?)"
)


def paise(price: float) -> int | None:
    """``price`` in whole paise, or None if it is not exactly a whole number of paise."""
    if not math.isfinite(price):
        raise ValueError(f"price {price!r} is not a finite number")
    k = round(price * PAISE)
    return k if k / PAISE == price else None


def stored_rows(
    candles: Iterable[Sequence[Any]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Candles ``(ts, open, high, low, close, volume, oi)`` (ts: epoch seconds, or any value
    the caller's SQL converts) -> rows for :data:`ROW_INSERT` and for :data:`EXACT_INSERT`
    (the candles with a price that is not whole paise; their main row has NULL prices)."""
    rows: list[tuple[Any, ...]] = []
    exact: list[tuple[Any, ...]] = []
    for ts, o, h, lo, c, v, oi in candles:
        cp, op, hp, lp = paise(c), paise(o), paise(h), paise(lo)
        if cp is None or op is None or hp is None or lp is None:
            rows.append((ts, None, None, None, None, v, oi))
            exact.append((ts, float(o), float(h), float(lo), float(c)))
        else:
            rows.append((ts, cp, op - cp, hp - cp, lp - cp, v, oi))
    return rows, exact
