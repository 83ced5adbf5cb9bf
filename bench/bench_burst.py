"""Burst of 1,500 candle requests in real time against the simulator on a loopback port.

The simulator enforces the real Upstox limits (50/1, 500/60, 2000/1800) and answers 429 on
any excess; the client uses the process limiter with the same spec. Expected: zero 429s, and
the busiest 60-second window (server arrival times) carries >= 95% of 500 requests.
Takes a little over two minutes (1,500 requests at 500 per minute).

    .venv/bin/python bench/bench_burst.py [--requests 1500] [--concurrency 16]

With ``--processes N`` the burst is split between N OS processes that share one SQLite
ledger (as the GUI and a scheduled CLI run would): still zero 429s expected.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp, serve
from expirytrack_desktop.timeutil import ist_date, parse_ts
from expirytrack_desktop.upstox.factory import make_client, process_limiter

SPEC = "50/1,500/60,2000/1800"


class ArrivalLog:
    """ASGI wrapper: the monotonic arrival time of every HTTP request, as the server sees it."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self.arrivals: list[float] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.arrivals.append(time.monotonic())
        await self.app(scope, receive, send)


def busiest(times: list[float], span: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + span) - i for i, t in enumerate(times)), default=0)


def work_items(market: Market, n: int) -> list[tuple[str, object]]:
    """(contract key, trading day) pairs: one-day candle requests over a few contracts."""
    key = market.underlying_keys()[0]
    items = []
    for expiry in reversed(market.expiries(key)):
        for item in market.future_contracts(key, expiry) + market.option_contracts(key, expiry)[:4]:
            rows = market.candles(item["instrument_key"])
            days = sorted({ist_date(parse_ts(r[0])) for r in rows})
            items += [(item["instrument_key"], d) for d in days]
            if len(items) >= n:
                return items[:n]
    raise SystemExit("market too small for the requested burst")


async def run(base: str, items, concurrency: int, ledger: str | None = None):
    limiter = process_limiter(SPEC, ledger)
    client = make_client(base, DEMO_ACCESS_TOKEN, limiter=limiter)
    queue: asyncio.Queue = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)
    candles = 0
    failures: list[str] = []

    async def worker() -> None:
        nonlocal candles
        while True:
            try:
                key, day = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                got = await client.get_candles(key, "1minute", day, day)
                candles += len(got)  # after the await: no lost update between tasks
            except Exception as exc:  # report, do not stop the burst
                failures.append(f"{type(exc).__name__}: {exc}")

    async with client:
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - t0
    return client, candles, failures, elapsed


def _child(base: str, items, concurrency: int, ledger: str, out) -> None:
    client, candles, failures, elapsed = asyncio.run(run(base, items, concurrency, ledger))
    out.put((client.requests_sent, client.retries, candles, failures, elapsed))


def in_processes(base: str, items, concurrency: int, n: int):
    """Split the burst over ``n`` processes sharing one SQLite ledger."""
    import multiprocessing
    import tempfile
    from types import SimpleNamespace

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = str(Path(tmp) / "ratelimit.sqlite")
        procs = [
            ctx.Process(target=_child, args=(base, items[i::n], concurrency, ledger, out))
            for i in range(n)
        ]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
    client = SimpleNamespace(
        requests_sent=sum(r[0] for r in results), retries=sum(r[1] for r in results)
    )
    failures = [f for r in results for f in r[3]]
    return client, sum(r[2] for r in results), failures, max(r[4] for r in results)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--processes", type=int, default=1)
    args = ap.parse_args()

    market = Market(seed=11)
    items = work_items(market, args.requests)
    app = SimulatorApp(market, rate_limit=SPEC, span_cap_days=None)
    logged = ArrivalLog(app)
    with serve(logged, port=0) as base:
        if args.processes > 1:
            result = in_processes(base, items, args.concurrency, args.processes)
        else:
            result = asyncio.run(run(base, items, args.concurrency))
        client, candles, failures, elapsed = result
    expected = sum(len(market.candle_rows(k, "1minute", d, d)) for k, d in items)
    arrivals = sorted(logged.arrivals)
    peak60 = busiest(arrivals, 60.0)
    peak1 = busiest(arrivals, 1.0)
    peak1800 = busiest(arrivals, 1800.0)
    print(f"burst: {len(items)} candle requests, concurrency {args.concurrency}, "
          f"{args.processes} process(es), spec {SPEC}")  # fmt: skip
    print(f"  elapsed {elapsed:.1f} s ({timedelta(seconds=int(elapsed))}), "
          f"{candles} candles received of {expected} held by the simulator")  # fmt: skip
    print(f"  client: requests_sent {client.requests_sent}, retries {client.retries}, "
          f"failures {len(failures)}")  # fmt: skip
    print(f"  server: requests {app.stats.requests}, 429s {app.stats.rate_limited}, "
          f"by status {dict(app.stats.by_status)}")  # fmt: skip
    print(f"  busiest 1 s window {peak1}/50, 60 s window {peak60}/500 = {peak60 / 500:.1%}, "
          f"1800 s window {peak1800}/2000")  # fmt: skip
    for f in failures[:5]:
        print("  failure:", f)
    ok = app.stats.rate_limited == 0 and peak60 >= 475 and not failures and candles == expected
    print(f"  -> {'PASS' if ok else 'FAIL'} (need zero 429s and busiest minute >= 475)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
