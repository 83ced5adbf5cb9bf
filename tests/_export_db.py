"""A small store database for export tests, built from the real migration SQL."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.prices import ROW_INSERT, stored_rows
from expirytrack_desktop.timeutil import IST

UNDERLYINGS = [
    (1, "NSE_INDEX|Nifty 50", "NIFTY", "Nifty 50"),
    (2, "BSE_INDEX|SNSX50", "SENSEX50", "BSE SENSEX 50"),
    (3, "NSE_EQ|INE205A01025", "VEDL", "VEDANTA LIMITED"),
]
EXCHANGE_SEGMENT = {1: "NSE_FO", 2: "BSE_FO", 3: "NSE_FO"}  # underlying id -> contract segment
EXCHANGE_OF = {1: "NFO", 2: "BFO", 3: "NFO"}  # ... and its OpenAlgo exchange
EXPIRIES = [
    (10, 1, "2025-04-17"),
    (11, 1, "2025-04-24"),
    (12, 2, "2025-04-24"),
    (13, 3, "2024-04-25"),
]


@dataclass(frozen=True)
class C:
    id: int
    expiry_id: int
    kind: str
    strike: float | None
    symbol: str | None  # stored openalgo_symbol (None: the exporter computes it)
    expected_symbol: str
    trading_symbol: str
    lot: int
    days: tuple[date, ...]  # trading days with candles ((): an empty contract)
    minutes: int = 4


CONTRACTS = [
    C(100, 11, "FUT", None, "NIFTY24APR25FUT", "NIFTY24APR25FUT", "NIFTY FUT 24 APR 25", 75,
      (date(2025, 4, 22), date(2025, 4, 23))),
    C(101, 11, "CE", 20400.0, "NIFTY24APR2520400CE", "NIFTY24APR2520400CE",
      "NIFTY 20400 CE 24 APR 25", 75, (date(2025, 4, 23),)),
    C(102, 11, "PE", 20400.0, None, "NIFTY24APR2520400PE", "NIFTY 20400 PE 24 APR 25", 75,
      (date(2025, 4, 22), date(2025, 4, 24))),
    C(103, 11, "CE", 20450.0, "NIFTY24APR2520450CE", "NIFTY24APR2520450CE",
      "NIFTY 20450 CE 24 APR 25", 75, ()),  # empty contract
    C(104, 10, "CE", 22000.0, "NIFTY17APR2522000CE", "NIFTY17APR2522000CE",
      "NIFTY 22000 CE 17 APR 25", 75, (date(2025, 4, 16),)),
    C(105, 12, "FUT", None, None, "SENSEX5024APR25FUT", "SENSEX50 FUT 24 APR 25", 20,
      (date(2025, 4, 23),)),
    C(106, 13, "CE", 292.5, "VEDL25APR24292.5CE", "VEDL25APR24292.5CE",
      'VEDL 292.5 CE, "25 APR 24"', 1550, (date(2024, 4, 24),)),
]  # fmt: skip


def candles_of(c: C) -> list[tuple]:
    """Deterministic candles; prices chosen to tempt float noise (2114.3, 0.05, 0.1+0.2)."""
    out = []
    for d_i, d in enumerate(c.days):
        start = datetime.combine(d, time(9, 15), IST)
        for m in range(c.minutes):
            ts = int((start + timedelta(minutes=m * 7)).timestamp())
            ticks = 42_286 + c.id * 3 + d_i * 11 + m  # prices are whole ticks of 0.05
            o = ticks / 20
            h = (ticks + 14) / 20
            lo = (ticks - 1) / 20 if m else 0.05
            cl = (ticks + 3) / 20
            out.append((c.id, 1, ts, o, h, lo, cl, 150 * m + c.id, 825 + m))
    return out


def build_db(path: Path) -> Path:
    open_database(path).close()  # the app's schema, every migration
    with closing(sqlite3.connect(path)) as conn:
        conn.executemany(
            "INSERT INTO underlying (id, instrument_key, symbol, name) VALUES (?,?,?,?)",
            UNDERLYINGS,
        )
        conn.executemany(
            "INSERT INTO expiry (id, underlying_id, expiry_date) VALUES (?,?,?)", EXPIRIES
        )
        usym = {u[0]: u[2] for u in UNDERLYINGS}
        uid = {e[0]: e[1] for e in EXPIRIES}
        for c in CONTRACTS:
            conn.execute(
                "INSERT INTO contract (id, expired_key, expiry_id, contract_type, strike_price,"
                " trading_symbol, lot_size, underlying_symbol, openalgo_symbol)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (c.id, f"{EXCHANGE_SEGMENT[uid[c.expiry_id]]}|{c.id}|x", c.expiry_id, c.kind,
                 c.strike, c.trading_symbol, c.lot, usym[uid[c.expiry_id]], c.symbol),
            )  # fmt: skip
            rows, exact = stored_rows(r[2:] for r in candles_of(c))  # the store's price layout
            assert not exact
            conn.executemany(ROW_INSERT.format(cid=c.id, iv=1), rows)
        # a 5-minute candle that a 1-minute export must not pick up
        conn.execute("INSERT INTO candle VALUES (100, 5, 1745293500, 100, 0, 0, 0, 1, 1)")
        conn.commit()
    return path


def expected_rows(ids: list[int] | None = None, lo: int = -(2**62), hi: int = 2**62) -> list[tuple]:
    """(symbol, ts, o, h, l, c, v, oi) in export order: by symbol, then time."""
    rows = []
    for c in CONTRACTS:
        if ids is not None and c.id not in ids:
            continue
        for _, _, ts, o, h, lw, cl, v, oi in candles_of(c):
            if lo <= ts < hi:
                rows.append((c.expected_symbol, ts, o, h, lw, cl, v, oi))
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def exchange_of(c: C) -> str:
    return EXCHANGE_OF[next(e[1] for e in EXPIRIES if e[0] == c.expiry_id)]


def contract_by_symbol(sym: str) -> C:
    return next(c for c in CONTRACTS if c.expected_symbol == sym)


def stored_candles(db: Path) -> list[tuple]:
    """Straight from the database: (symbol, ts, o, h, l, c, v, oi) of every 1-minute candle,
    in export order (symbol, then time) — what every export is compared with."""
    symbol = {c.id: c.expected_symbol for c in CONTRACTS}
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT contract_id, ts, open, high, low, close, volume, oi FROM candle_rupees "
            "WHERE interval = 1"
        ).fetchall()
    return sorted((symbol[cid], *rest) for cid, *rest in rows)
