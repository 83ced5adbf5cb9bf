"""Universe scale: a generated 100 M-candle database (about 150,000 contracts) and the time of
what the status command, the dashboard, the jobs table and ``verify`` ask of it.

The database is written straight in the store's layout (schema from ``open_database``, then
rows through one raw connection with the journal off): 5 index underlyings x 20 expiries x 100
contracts trading every minute of their last ~19 sessions (7,000 candles each: 70 M) and 200
stock underlyings x 5 monthly expiries x 140 thin contracts (~214 candles each over the last 60
sessions: 30 M). Each contract has three 30-day windows ('fetched', with their counts), each
expiry a coverage target, and 300 finished jobs. Prices are random walks in whole paise. Built
once into bench/out/ (git-ignored; ~3.5 GB), reused unless ``--rebuild``.

    .venv/bin/python bench/bench_scale.py [--candles 100000000] [--rebuild] [--verify]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
IST_OFFSET = 19_800
SESSION_START = 9 * 3600 + 15 * 60
SESSION_MINUTES = 375


def sessions_before(expiry: date, n: int) -> list[date]:
    days: list[date] = []
    d = expiry
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return days[::-1]


def minute_grid(expiry: date, n_days: int) -> np.ndarray:
    """Epoch seconds of every session minute of the ``n_days`` sessions up to ``expiry``."""
    starts = np.array(
        [(d - date(1970, 1, 1)).days * 86400 - IST_OFFSET + SESSION_START
         for d in sessions_before(expiry, n_days)],
        dtype=np.int64,
    )  # fmt: skip
    return (starts[:, None] + 60 * np.arange(SESSION_MINUTES)[None, :]).ravel()


def build(path: Path, scale: float) -> tuple[int, int]:
    """Write the database; returns (contracts, candles)."""
    from expirytrack_desktop.store import open_database

    tmp = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    open_database(tmp).close()
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -200000")
    rng = np.random.default_rng(11)
    con.execute("BEGIN")
    plan: list[tuple[str, str, int, int, int, int]] = []  # key, symbol, expiries, per, candles
    for sym in ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"]:
        plan.append((f"NSE_INDEX|{sym}", sym, 20, 100, int(7000 * scale), 7))
    for i in range(200):
        plan.append((f"NSE_EQ|INE{i:06d}01", f"STOCK{i:03d}", 5, 140, int(214 * scale), 28))
    cid = eid = 0
    total = 0
    first = date(2025, 6, 26)
    windows: list[tuple] = []
    t0 = time.perf_counter()
    for uid, (key, sym, n_exp, per, n_candles, step_days) in enumerate(plan, start=1):
        con.execute(
            "INSERT INTO underlying(id, instrument_key, symbol, name) VALUES (?, ?, ?, ?)",
            (uid, key, sym, sym),
        )
        for e in range(n_exp):
            eid += 1
            expiry = first + timedelta(days=step_days * e)
            target_from = expiry - timedelta(days=89)
            con.execute(
                "INSERT INTO expiry(id, underlying_id, expiry_date, is_weekly, contracts_fetched, "
                "data_fetched) VALUES (?, ?, ?, ?, 1, 1)",
                (eid, uid, expiry.isoformat(), int(step_days == 7)),
            )
            con.execute(
                "INSERT INTO coverage_target VALUES (?, 1, ?, ?)",
                (eid, target_from.isoformat(), expiry.isoformat()),
            )
            grid = minute_grid(expiry, 60)
            cuts = [target_from + timedelta(days=30 * k) for k in range(3)]
            cut_ts = [(d - date(1970, 1, 1)).days * 86400 - IST_OFFSET for d in cuts[1:]]
            for j in range(per):
                cid += 1
                kind = "FUT" if j == 0 else ("CE" if j % 2 else "PE")
                strike = None if kind == "FUT" else 1000 + 50 * (j // 2)
                con.execute(
                    "INSERT INTO contract(id, expired_key, expiry_id, contract_type, "
                    "strike_price, trading_symbol, lot_size, tick_size, underlying_symbol) "
                    "VALUES (?, ?, ?, ?, ?, ?, 75, 5.0, ?)",
                    (cid, f"NSE_FO|{cid}|{expiry:%d-%m-%Y}", eid, kind, strike,
                     f"{sym} {strike or ''} {kind} {expiry:%d %b %y}".upper(), sym),
                )  # fmt: skip
                if n_candles >= 7000:
                    ts = grid[-n_candles:]
                else:
                    ts = np.sort(rng.choice(grid, size=n_candles, replace=False))
                n = ts.size
                close = np.maximum(20, 20_000 + np.cumsum(rng.integers(-4, 5, n)) * 5)
                opened = rng.integers(-2, 3, n) * 5  # paise relative to the close
                high = np.maximum(opened, 0) + rng.integers(0, 3, n) * 5
                low = np.maximum(np.minimum(opened, 0) - rng.integers(0, 3, n) * 5, 5 - close)
                oi = np.abs(100_000 + np.cumsum(rng.integers(-20, 21, n)) * 75)
                rows = zip(
                    [cid] * n, [1] * n, ts.tolist(), close.tolist(), opened.tolist(),
                    high.tolist(), low.tolist(), (rng.integers(0, 400, n) * 75).tolist(),
                    oi.tolist(), strict=True,
                )  # fmt: skip
                con.executemany("INSERT INTO candle VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                bounds = np.searchsorted(ts, cut_ts)
                counts = np.diff([0, *bounds.tolist(), n])
                for k in range(3):
                    w_from = cuts[k]
                    w_to = cuts[k + 1] - timedelta(days=1) if k < 2 else expiry
                    windows.append(
                        (cid, w_from.isoformat(), w_to.isoformat(),
                         "fetched" if counts[k] else "empty", int(counts[k]))
                    )  # fmt: skip
                total += n
            if len(windows) > 100_000:
                con.executemany(
                    "INSERT INTO fetch_window(contract_id, interval, from_date, to_date, state, "
                    "candles, job_id) VALUES (?, 1, ?, ?, ?, ?, 1)",
                    windows,
                )
                windows.clear()
        print(f"  {sym}: {total:,} candles, {cid:,} contracts, {time.perf_counter() - t0:.0f} s",
              flush=True) if uid % 25 == 0 or uid <= 5 else None  # fmt: skip
    con.executemany(
        "INSERT INTO fetch_window(contract_id, interval, from_date, to_date, state, candles, "
        "job_id) VALUES (?, 1, ?, ?, ?, ?, 1)",
        windows,
    )
    for j in range(1, 301):
        chosen = [plan[(j * 7 + k) % len(plan)][0] for k in range(1 + j % 3)]
        params = {"underlyings": chosen, "expiries": None, "interval": "1minute", "months": 3}
        con.execute(
            "INSERT INTO job(id, job_type, status, params_json, underlyings, expiries, "
            "total_items, done_items, created_at, started_at, completed_at) "
            "VALUES (?, 'collect', 'completed', ?, ?, 'all', 10, 10, ?, ?, ?)",
            (j, json.dumps(params), ", ".join(chosen), *(["2025-12-01 10:00:00"] * 3)),
        )
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()
    os.replace(tmp, path)
    return cid, total


def timed(fn, rounds: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candles", type=int, default=100_000_000)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--verify", action="store_true", help="also time a full verify")
    a = ap.parse_args()
    scale = a.candles / 100_000_000
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"scale_{a.candles // 1_000_000}m.sqlite3"
    if a.rebuild or not path.exists():
        t0 = time.perf_counter()
        contracts, candles = build(path, scale)
        print(f"built {path.name}: {contracts:,} contracts, {candles:,} candles in "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    from expirytrack_desktop.store import open_database

    size = path.stat().st_size
    with open_database(path) as db:
        n = db.counts()
        per = size / max(n.candles, 1)
        print(f"{n.contracts:,} contracts, {n.candles:,} candles, {size / 1e9:.2f} GB = "
              f"{per:.1f} bytes per candle (whole file, as written)")  # fmt: skip

        def stale(share: int) -> None:
            """Mark every ``share``-th expiry stale, as a day's collection (or the migration,
            share 1) leaves them."""
            with db.transaction() as c:
                c.execute(
                    "INSERT OR REPLACE INTO coverage_stale(expiry_id, stamp) "
                    f"SELECT id, 1 FROM expiry WHERE id % {share} = 0"
                )

        def recompute(share: int) -> float:
            stale(share)
            t0 = time.perf_counter()
            db.coverage()
            return time.perf_counter() - t0

        results = {
            "coverage() after a migration (every expiry recomputed)": (recompute(1), None),
            "coverage() after a day's collection (1 expiry in 50 changed)": (recompute(50), None),
            "coverage() (dashboard grid, status table)": timed(db.coverage),
            "counts() (dashboard figures, status line)": timed(db.counts),
            "list_jobs(200, 'collect') (jobs table)": timed(lambda: db.list_jobs(200, "collect")),
            "list_jobs(10) (status)": timed(lambda: db.list_jobs(10)),
        }
        for name, (sec, _) in results.items():
            print(f"  {name}: {sec * 1000:.0f} ms")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "expirytrack_desktop", "status", "--db", str(path)]
    walls, cpus = [], []
    for _ in range(5):
        wall, cpu, proc = run(cmd, env)
        walls.append(wall)
        cpus.append(cpu)
        assert proc.returncode == 0, proc.stderr
    print(f"  expirytrack status (process, median of 5): {statistics.median(walls):.2f} s wall, "
          f"{statistics.median(cpus):.2f} s CPU")  # fmt: skip
    if a.verify:
        verify = [sys.executable, "-m", "expirytrack_desktop", "verify", "--db", str(path)]
        for label, extra, prepare in (
            ("verify --full --quick (every candle and window, quick_check)", ["--full", "--quick"],
             None),
            ("verify, first run (every window is new to it)", [], None),
            ("verify, nothing changed since", [], None),
            ("verify after a day's collection (the windows of 1 expiry in 50 rewritten)", [],
             "UPDATE fetch_window SET updated_at = '2026-12-07 10:00:00' WHERE contract_id IN "
             "(SELECT id FROM contract WHERE expiry_id % 50 = 0)"),
            ("verify --quick, nothing changed", ["--quick"], None),
        ):  # fmt: skip
            if prepare:
                con = sqlite3.connect(path)
                con.execute(prepare)
                con.commit()
                con.close()
            wall, cpu, proc = run(verify + extra, env)
            print(f"  {label}: {wall:.1f} s wall, {cpu:.1f} s CPU (exit {proc.returncode})")
            lines = proc.stdout.splitlines()
            print("    " + (lines[1].strip() if len(lines) > 1 else proc.stderr[-300:]))
    return 0


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds (user + system of the child) of one command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


if __name__ == "__main__":
    sys.exit(main())
