"""Estimates that hold: the engine's estimate of a selection vs the real run, at Upstox's limits.

Each case starts the simulator as its own process (``python -m expirytrack_desktop.sandbox``,
market seed 7, today 2025-06-01, 10 strikes per side, a 30-day span cap on 1-minute candles,
the rate limits enforced with 429s, latency uniform in the given range, no error faults), a
fresh database, and one client with the same limits. The contract lists of the chosen expiries
are fetched and stored first (so the plan is exact and their requests are budget already
used, as after the wizard's expiry page), then:

1. ``Collector.estimate(selections)`` (one estimate for everything, the budget in the ledger
   included — the function behind the window's review page and ``expirytrack collect``);
2. one job per underlying, all started at once on the shared limiter (as the window does),
   timed from start to the last one's end.

Cases: one underlying below 500 requests (no rate window binds: how fast this machine's
engine and simulator go decides; reported, not judged); one underlying and three underlyings
above 500 (the minute window binds); and above the 30-minute limit with every limit and
time constant scaled down 10x (``5/0.1,50/6,200/180``, limiter margin 0.01 s, latency
2-20 ms: the same requests per second in every window, a 3-minute "half hour"), so the run
crosses that window in minutes instead of hours.

    .venv/bin/python bench/bench_estimate.py [--case NAME] [--tolerance 0.10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from expirytrack_desktop.collect import Collector, Selection  # noqa: E402
from expirytrack_desktop.collect.estimate import wall_seconds  # noqa: E402
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN  # noqa: E402
from expirytrack_desktop.store import open_database  # noqa: E402
from expirytrack_desktop.upstox.client import UpstoxClient  # noqa: E402
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec  # noqa: E402

REAL = "50/1,500/60,2000/1800"
SCALED = "5/0.1,50/6,200/180"
SYMBOLS = {
    "NIFTY": "NSE_INDEX|Nifty 50",
    "BANKNIFTY": "NSE_INDEX|Nifty Bank",
    "FINNIFTY": "NSE_INDEX|Nifty Fin Service",
    "SENSEX": "BSE_INDEX|SENSEX",
}


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    margin: float
    latency_ms: str
    underlyings: tuple[str, ...]
    expiries: int  # the last N of each underlying
    months: int
    rate_bound: bool = True  # False: too few requests for a rate window to bind (reported only)


CASES = [
    Case("small-engine-bound", REAL, 0.1, "20,200", ("NIFTY",), 2, 4, rate_bound=False),
    Case("one-underlying", REAL, 0.1, "20,200", ("NIFTY",), 4, 4),
    Case("three-underlyings", REAL, 0.1, "20,200", ("NIFTY", "BANKNIFTY", "FINNIFTY"), 2, 4),
    Case("above-30min-scaled", SCALED, 0.01, "2,20", ("NIFTY", "BANKNIFTY"), 2, 3),
]


@contextlib.contextmanager
def simulator(case: Case) -> Iterator[str]:
    """The simulator as its own process on a loopback port; yields its base URL."""
    argv = [sys.executable, "-m", "expirytrack_desktop.sandbox", "--today", "2025-06-01",
            "--seed", "7", "--span-cap", "30", "--rate-limit", case.spec,
            "--latency-ms", case.latency_ms, "--log-level", "critical"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        yield first.split(" on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def run_case(case: Case, base: str, db_path: Path) -> dict[str, float]:
    spec = RateLimitSpec.parse(case.spec)
    limiter = RateLimiter(spec, margin=case.margin)
    client = UpstoxClient(base, access_token=DEMO_ACCESS_TOKEN, limiter=limiter)
    db = open_database(db_path)
    try:
        db.set_span_cap("1minute", 30)  # learned by an earlier run: the plan is exact
        selections = []
        for sym in case.underlyings:
            key = SYMBOLS[sym]
            chosen = (await client.get_expiries(key))[-case.expiries :]
            await db.run(db.upsert_underlying, key, symbol=sym)
            await db.run(db.upsert_expiries, key, chosen)
            for e in chosen:
                found = await client.get_option_contracts(key, e)
                found += await client.get_future_contracts(key, e)
                await db.run(db.store_contracts, key, e, found, mark_fetched=True)
            selections.append(Selection([key], chosen, months=case.months))
        collector = Collector(db, client, concurrency=8)
        est = await collector.estimate(selections)
        sent0 = client.requests_sent
        t0 = time.monotonic()
        jobs = [await collector.start(s) for s in selections]
        results = [await j.wait() for j in jobs]
        wall = time.monotonic() - t0
        assert all(r.state == "completed" for r in results), [r.message for r in results]
        return {
            "est_requests": est.requests,
            "requests": client.requests_sent - sent0,
            "est_seconds": est.seconds,
            "seconds": wall,
            "notes": "; ".join(est.notes),  # type: ignore[dict-item]
        }
    finally:
        await client.aclose()
        db.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=[c.name for c in CASES], action="append")
    ap.add_argument("--tolerance", type=float, default=0.10)
    a = ap.parse_args()
    ok = True
    print("| case | limits | jobs | requests est / real | wall time est / real | error |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        if a.case and case.name not in a.case:
            continue
        with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp, simulator(case) as base:
            r = asyncio.run(run_case(case, base, Path(tmp) / "c.sqlite3"))
        err = r["est_seconds"] / r["seconds"] - 1
        ok = ok and r["est_requests"] == r["requests"]
        if case.rate_bound:
            ok = ok and abs(err) <= a.tolerance
        print(
            f"| {case.name} | {case.spec} | {len(case.underlyings)} | "
            f"{r['est_requests']:,} / {r['requests']:,} | {r['est_seconds']:.1f} s / "
            f"{r['seconds']:.1f} s | {err:+.1%}{'' if case.rate_bound else ' (not judged)'} |",
            flush=True,
        )
        if r["notes"]:
            print(f"|   notes: {r['notes']} | | | | | |")
    windows = RateLimitSpec.parse(REAL).windows
    for n in (810, 3234, 6466, 150_000):
        s = wall_seconds(n, windows, concurrency=8)
        print(f"estimate at the real limits, empty budget: {n:,} requests -> {s / 60:.1f} min")
    print(f"RESULT: {'PASS' if ok else 'FAIL'} (tolerance ±{a.tolerance:.0%})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
