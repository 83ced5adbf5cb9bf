"""Planning an "everything" watchlist against the generated 100 M-candle database: time and RSS.

The database is ``bench_scale.py``'s (150,000 contracts of 205 underlyings, 1,100 expiries,
450,000 windows, 100 M candles). Run it on a COPY: the run stores what a ``watch run`` stores
(the F&O underlyings of the master, here the database's 205 underlyings when none are stored;
the watchlist; each expiry's coverage target). In one fresh process, timed one by one with
the real functions, as ``expirytrack watch run everything`` calls them:

1. open the database (``open_database``);
2. the watchlist's underlyings (``watch_keys`` over ``Database.universe``);
3. the estimate shown before the start (``Collector.estimate``: requests and wall time under
   the three rate windows; no API request);
4. the job's plan: every stored expiry of every underlying through ``plan_expiry`` (record=True,
   the job's call) at the 30-day span, then ``deadline_first`` over all windows;
5. the watchlist's completeness (``completeness``: what ``watch list`` and the window show).

Peak RSS is the process's ``ru_maxrss`` (interpreter and imports included). Target: steps 2-4
(planning) ≤ 10 s; RSS reported against the engine's 500 MB.

    cp bench/out/scale_100m.sqlite3 bench/out/scale_plan.sqlite3   # or --db a copy
    .venv/bin/python bench/bench_plan_universe.py [--db bench/out/scale_plan.sqlite3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from expirytrack_desktop.collect import Collector  # noqa: E402
from expirytrack_desktop.collect.plan import deadline_first  # noqa: E402
from expirytrack_desktop.collect.planning import plan_expiry  # noqa: E402
from expirytrack_desktop.collect.watchlist import (  # noqa: E402
    completeness,
    selection_for,
    watch_keys,
)
from expirytrack_desktop.store import open_database  # noqa: E402
from expirytrack_desktop.store.underlyings import UniverseEntry  # noqa: E402
from expirytrack_desktop.store.watchlists import Watchlist, save_watchlist  # noqa: E402
from expirytrack_desktop.upstox.client import UpstoxClient  # noqa: E402
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec  # noqa: E402

REAL = "50/1,500/60,2000/1800"
SPAN = 30  # days per 1-minute request (the span cap the engine learns from the API)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def universe_from_underlyings(db) -> int:  # type: ignore[no-untyped-def]
    """The master's F&O underlyings, from the database's own underlyings (the generated file
    has no master)."""
    rows = db.execute("SELECT instrument_key, symbol, name FROM underlying")
    entries = [
        UniverseEntry(
            key, symbol or key, name or symbol or key,
            "INDEX" if "_INDEX|" in key else "EQUITY",
            "BSE_FO" if key.startswith("BSE") else "NSE_FO", 1,
        )
        for key, symbol, name in rows
    ]  # fmt: skip
    db.replace_universe(entries, date(2026, 12, 7), "bench_plan_universe")
    return len(entries)


async def plan_all(db, selection) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """The job's plan: every known expiry of every underlying, on the writer thread."""

    def work() -> tuple[int, int, int]:
        tasks = []
        expiries = contracts = 0
        for key in selection.underlyings:
            for expiry, _fetched, _weekly in db.known_expiries(key):
                plan = plan_expiry(db, key, expiry, selection, SPAN, record=True)
                expiries += 1
                contracts += plan.contracts
                tasks.extend(plan.tasks)
        return expiries, contracts, len(deadline_first(tasks))

    return await db.run(work)


async def main_async(path: Path) -> int:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    size = path.stat().st_size / 1e9
    print(f"bench_plan_universe: {path} ({size:.2f} GB); load average {load}; RSS after imports "
          f"{rss_mb():.0f} MB")  # fmt: skip
    times: dict[str, float] = {}
    t = time.perf_counter()
    db = open_database(path)
    times["open"] = time.perf_counter() - t
    try:
        if not db.universe():
            print(f"stored {universe_from_underlyings(db)} underlyings as the master's")
        wl = Watchlist("everything", "everything", (), ("CE", "PE", "FUT"), None, "1minute", 3)
        save_watchlist(db, wl, replace_existing=True)
        cpu0 = time.process_time()
        t = time.perf_counter()
        keys, _notes = watch_keys(wl, await db.run(db.universe))
        selection = selection_for(wl, keys)
        times["keys"] = time.perf_counter() - t
        client = UpstoxClient(
            "http://127.0.0.1:9", access_token=None, limiter=RateLimiter(RateLimitSpec.parse(REAL))
        )
        try:
            t = time.perf_counter()
            est = await Collector(db, client, concurrency=8).estimate(selection)
            times["estimate"] = time.perf_counter() - t
        finally:
            await client.aclose()
        t = time.perf_counter()
        expiries, contracts, windows = await plan_all(db, selection)
        times["plan"] = time.perf_counter() - t
        planning_cpu = time.process_time() - cpu0
        t = time.perf_counter()
        c = await db.run(completeness, db, wl, keys, today=date(2026, 12, 7), within_days=14)
        times["completeness"] = time.perf_counter() - t
    finally:
        db.close()
    planning = times["keys"] + times["estimate"] + times["plan"]
    print(f"underlyings {len(keys)}, expiries {expiries:,}, contracts {contracts:,}, "
          f"windows still missing {windows:,}")  # fmt: skip
    print(f"estimate: {est.requests:,} requests, {est.seconds / 3600:.1f} h; notes: "
          f"{'; '.join(est.notes)[:300]}")  # fmt: skip
    for k, v in times.items():
        print(f"  {k}: {v:.2f} s")
    print(
        f"planning (underlyings + estimate + the job's plan): {planning:.2f} s wall, "
        f"{planning_cpu:.2f} s CPU (target ≤ 10 s: {'PASS' if planning <= 10 else 'FAIL'}); "
        f"completeness {c.complete}/{c.total} complete, {c.at_risk} at risk"
    )
    print(f"peak RSS of the process: {rss_mb():.0f} MB (engine target ≤ 500 MB); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    return 0 if planning <= 10 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "scale_100m.sqlite3")
    a = ap.parse_args()
    if not a.db.exists():
        raise SystemExit(f"{a.db}: not found (bench_scale.py builds it; copy it here)")
    return asyncio.run(main_async(a.db))


if __name__ == "__main__":
    sys.exit(main())
