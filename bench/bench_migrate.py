"""Migration 004 (candle prices to integer paise) on an existing database: seconds per million
candles, for the backup and for the copy, and the file before and after.

Builds a schema-3 file in the old layout (REAL rupee prices, whole ticks of 5 paise, dense
1-minute candles of 1,000 contracts) with ``--candles`` candles, then opens it with
``open_database`` (backup, resumable copy, swap) and times each part through the progress
callback. Checks every price of a sample of contracts against the old file.

    .venv/bin/python bench/bench_migrate.py [--candles 5000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from expirytrack_desktop.store import open_database  # noqa: E402
from expirytrack_desktop.store.migrate import load_migrations  # noqa: E402

CONTRACTS = 1000
T0 = 1_745_466_300  # 2025-04-24 09:15 IST


def build_v3(path: Path, candles: int) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    for number, _name, sql in load_migrations()[:3]:
        con.executescript(f"BEGIN;{sql};PRAGMA user_version = {number};COMMIT;")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("INSERT INTO underlying(id, instrument_key, symbol) VALUES (1, 'NSE_INDEX|X', 'X')")
    con.execute("INSERT INTO expiry(id, underlying_id, expiry_date) VALUES (1, 1, '2025-06-26')")
    per = candles // CONTRACTS
    rng = np.random.default_rng(3)
    con.execute("BEGIN")
    for cid in range(1, CONTRACTS + 1):
        con.execute(
            "INSERT INTO contract(id, expired_key, expiry_id, contract_type) "
            "VALUES (?, ?, 1, 'CE')",
            (cid, f"NSE_FO|{cid}|26-06-2025"),
        )
        ticks = np.maximum(1, 4000 + np.cumsum(rng.integers(-3, 4, per)))
        o, c = ticks, np.maximum(1, ticks + rng.integers(-2, 3, per))
        h, lo = np.maximum(o, c) + rng.integers(0, 3, per), np.minimum(o, c)
        rows = zip(
            [cid] * per, [1] * per, (T0 + 60 * np.arange(per)).tolist(), (o / 20).tolist(),
            (h / 20).tolist(), (lo / 20).tolist(), (c / 20).tolist(),
            rng.integers(0, 9000, per).tolist(), rng.integers(0, 10**6, per).tolist(), strict=True,
        )  # fmt: skip
        con.executemany("INSERT INTO candle VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute(
            "INSERT INTO fetch_window(contract_id, interval, from_date, to_date, state, candles) "
            "VALUES (?, 1, '2025-04-24', '2025-06-26', 'fetched', ?)",
            (cid, per),
        )
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candles", type=int, default=5_000_000)
    a = ap.parse_args()
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-migrate-", dir=ROOT / "bench" / "out"))
    try:
        path = tmp / "v3.sqlite3"
        t0 = time.perf_counter()
        build_v3(path, a.candles)
        before = path.stat().st_size
        reference = tmp / "reference.sqlite3"
        shutil.copy(path, reference)
        print(f"built a schema-3 file: {a.candles:,} candles, {before / 1e6:.0f} MB "
              f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        marks: list[tuple[float, int, int]] = []
        start = time.perf_counter()
        with open_database(path, on_migrate=lambda d, t: marks.append((time.perf_counter(), d, t))):
            pass
        end = time.perf_counter()
        first, last = marks[0][0], marks[-1][0]
        m = a.candles / 1e6
        backup = first - start
        print(f"backup (before the copy starts): {backup:.1f} s = {backup / m:.2f} s/M")
        print(f"copy ({len(marks) - 1} committed batches): {last - first:.1f} s = "
              f"{(last - first) / m:.2f} s/M")  # fmt: skip
        print(f"swap (drop the old table, rename, views): {end - last:.1f} s")
        print(
            f"whole migration: {end - start:.1f} s = {(end - start) / m:.2f} s per million candles"
        )
        after = path.stat().st_size + sum(
            os.path.getsize(str(path) + s) for s in ("-wal",) if os.path.exists(str(path) + s)
        )
        con = sqlite3.connect(path)
        con.execute("VACUUM")
        vacuumed = path.stat().st_size
        con.execute(f"ATTACH '{reference}' AS old")
        bad = con.execute(
            "SELECT count(*) FROM candle_rupees n "
            "JOIN old.candle o USING (contract_id, interval, ts) "
            "WHERE n.contract_id % 50 = 1 AND (n.open IS NOT o.open OR n.high IS NOT o.high "
            "OR n.low IS NOT o.low OR n.close IS NOT o.close OR n.volume != o.volume "
            "OR n.oi != o.oi)"
        ).fetchone()[0]
        checked = con.execute(
            "SELECT count(*) FROM old.candle WHERE contract_id % 50 = 1"
        ).fetchone()[0]
        con.close()
        print(f"file: {before / 1e6:.0f} MB before, {after / 1e6:.0f} MB after (freed pages kept), "
              f"{vacuumed / 1e6:.0f} MB after VACUUM")  # fmt: skip
        print(f"prices compared with the old file: {checked:,} candles, {bad} different")
        return 1 if bad else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
