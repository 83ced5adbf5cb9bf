"""How long the check for damaged pages before a collection takes on a big database.

Generates (once, kept at --path) an ExpiryTrack database of about --candles 1-minute candles
(10,000 per contract), then times ``PRAGMA quick_check`` (reads every page) against
:func:`expirytrack_desktop.store.health.check_pages` (full below 64 MB, sampled above), three
runs in a row (each reads the next slice of candles). tests/test_page_check.py shows what each
finds.

    .venv/bin/python bench/bench_page_check.py --candles 100000000 --path /tmp/pc100m.sqlite3
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path

from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.health import check_database

PER_CONTRACT = 10_000


def generate(path: Path, candles: int) -> None:
    open_database(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO underlying(id, instrument_key, symbol) VALUES (1, 'NSE_INDEX|Nifty 50', "
            "'NIFTY')"
        )
        contracts = max(1, candles // PER_CONTRACT)
        for e in range(contracts // 100 + 1):
            conn.execute(
                "INSERT INTO expiry(id, underlying_id, expiry_date) "
                "VALUES (?, 1, date('2020-01-02', ?))",
                (e + 1, f"+{7 * e} days"),
            )
        conn.executemany(
            "INSERT INTO contract(id, expired_key, expiry_id, contract_type, strike_price) "
            "VALUES (?, ?, ?, 'CE', ?)",
            (
                (i + 1, f"NSE_FO|{i}|01-01-2025", i // 100 + 1, 20000.0 + i % 100)
                for i in range(contracts)
            ),
        )
        conn.execute("COMMIT")
        columns = [r[1] for r in conn.execute("PRAGMA table_info(candle)")]
        values = {
            "contract_id": "?2",
            "interval": "1",
            "ts": "1700000000 + 60 * k",
            "volume": "k",
            "oi": "3 * k",
        }
        select = ", ".join(values.get(c, "100 + k % 7") for c in columns)
        for i in range(contracts):
            conn.execute("BEGIN")
            conn.execute(
                "WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < ?1) "
                f"INSERT INTO candle({', '.join(columns)}) SELECT {select} FROM s",
                (PER_CONTRACT - 1, i + 1),
            )
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candles", type=int, default=100_000_000)
    ap.add_argument("--path", type=Path, default=Path("/tmp/bench_page_check.sqlite3"))
    ap.add_argument("--skip-quick-check", action="store_true")
    args = ap.parse_args()
    if not args.path.exists():
        _, s = timed(lambda: generate(args.path, args.candles))
        print(f"generated {args.path} in {s:.0f} s")
    size = os.path.getsize(args.path)
    with sqlite3.connect(args.path) as conn:
        (contracts,) = conn.execute("SELECT count(*) FROM contract").fetchone()
    conn.close()
    print(f"{contracts * PER_CONTRACT:,} candles, {contracts:,} contracts, {size / 1e6:,.0f} MB")
    if not args.skip_quick_check:
        with sqlite3.connect(args.path) as conn:
            rows, s = timed(lambda: conn.execute("PRAGMA quick_check").fetchall())
        conn.close()
        print(f"PRAGMA quick_check: {rows[0][0]} in {s:.1f} s")
    with open_database(args.path) as db:
        for n in range(3):
            how, s = timed(lambda: check_database(db, again=True))
            print(f"check_pages run {n + 1}: {how} in {s:.2f} s")


if __name__ == "__main__":
    main()
