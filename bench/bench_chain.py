"""Option chain minute step: time to rebuild a 300-strike chain (600 contracts) one minute on.

    .venv/bin/python bench/bench_chain.py [--strikes 150] [--steps 300] [--rebuild]

Builds (once, cached in bench/out/, git-ignored) a database by collecting one NIFTY monthly
expiry from the built-in simulator with ``strikes`` strikes either side of the money (CE + PE
+ the future, one month of 1-minute candles each) through the real CLI, then steps the chain
minute by minute through a trading day as the window's ←/→ keys do (``build_chain`` with IV
and greeks for every side) and reports p50 / p99 / max milliseconds per step. Target: p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def build(db_path: Path, strikes: int) -> None:
    from datetime import date

    from expirytrack_desktop import runtime
    from expirytrack_desktop.cli.main import main
    from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp

    async def no_sleep(_s: float) -> None:
        return None

    market = Market(seed=11, today=date(2025, 10, 1), underlyings=("NIFTY",),
                    strikes_per_side=strikes)  # fmt: skip
    app = SimulatorApp(market, rate_limit=None)
    home = OUT / "chain_home"
    os.environ.update(
        EXPIRYTRACK_HOME=str(home),
        EXPIRYTRACK_ACCESS_TOKEN=DEMO_ACCESS_TOKEN,
        EXPIRYTRACK_RATE_LIMIT="100000/1",
        EXPIRYTRACK_DB=str(db_path),
    )
    with runtime.override(transport=app.transport(), client_kwargs={"sleep": no_sleep},
                          ledger_path=False):  # fmt: skip
        code = main(["collect", "-i", "NIFTY", "-e", "2025-09-30", "--months", "1"])
    if code != 0:
        raise SystemExit(f"collect failed: exit {code}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strikes", type=int, default=150, help="strikes either side (150 -> 300)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()

    from expirytrack_desktop.analysis.candles import DbCandleSource
    from expirytrack_desktop.analysis.chain import build_chain
    from expirytrack_desktop.analysis.minutes import step_minute, step_trading_day
    from expirytrack_desktop.store import open_database
    from expirytrack_desktop.timeutil import IST

    OUT.mkdir(parents=True, exist_ok=True)
    db_path = OUT / f"chain_{args.strikes}.sqlite3"
    if args.rebuild or not db_path.exists():
        db_path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        build(db_path, args.strikes)
        print(f"built {db_path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    key = "NSE_INDEX|Nifty 50"
    from datetime import date

    expiry = date(2025, 9, 30)
    with open_database(db_path, create=False, check_writable=False) as db:
        source = DbCandleSource(db, cache=True)
        days = sorted({datetime.fromtimestamp(r[0], IST).date() for r in db.execute(
            "SELECT DISTINCT ts / 86400 * 86400 + 43200 FROM candle")})  # fmt: skip
        minute = datetime.combine(days[-5], datetime.min.time(), tzinfo=IST).replace(
            hour=9, minute=15
        )
        first = build_chain(source, key, expiry, minute)
        strikes = len(first.rows)
        sides = sum((r.ce is not None) + (r.pe is not None) for r in first.rows)
        times = []
        ivs = 0
        snap = first
        for _ in range(args.steps):
            minute = step_minute(minute, 1, days)
            t0 = time.perf_counter()
            snap = build_chain(source, key, expiry, minute, previous=snap)
            times.append((time.perf_counter() - t0) * 1000)
            ivs += sum((r.ce is not None and r.ce.iv is not None)
                       + (r.pe is not None and r.pe.iv is not None) for r in snap.rows)  # fmt: skip
        day_times = []
        for _ in range(min(10, len(days) - 1)):  # PgDn: the same minute one trading day on
            minute = step_trading_day(minute, -1, days)
            t0 = time.perf_counter()
            build_chain(source, key, expiry, minute)
            day_times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"chain step: {strikes} strikes, {sides} contracts, {args.steps} minute steps, "
        f"{ivs / args.steps:.0f} IVs per step: p50 {statistics.median(times):.1f} ms, "
        f"p99 {p99:.1f} ms, max {times[-1]:.1f} ms -> {'PASS' if p99 <= 50 else 'FAIL'} "
        f"(p99 <= 50 ms); day step (PgUp/PgDn, loads the day): median "
        f"{statistics.median(day_times):.0f} ms, max {max(day_times):.0f} ms"
    )


if __name__ == "__main__":
    main()
