"""Keep-complete watchlists with a strike filter: candle requests and candles for stock
options within ±N strikes / ±X % of the price near expiry, against all strikes.

Each variant is one collection of every offered expiry of the same stocks (1-minute candles,
3 months before each expiry, CE/PE/FUT) into a fresh database, through the collect engine and
the simulator in process (limits lifted: only the request count matters here).

Run: .venv/bin/python bench/bench_watch_strikes.py [--stocks 6] [--months 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from expirytrack_desktop.collect import Collector, Selection
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp
from expirytrack_desktop.store import open_database
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

TODAY = date(2025, 11, 20)


async def one(app: SimulatorApp, keys: list[str], spec: str | None, months: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_database(Path(tmp) / "b.sqlite3") as db:
        client = UpstoxClient(
            "http://sim.test",
            access_token=DEMO_ACCESS_TOKEN,
            limiter=RateLimiter(RateLimitSpec.parse("100000/1")),
            transport=app.transport(),
        )
        collector = Collector(db, client, concurrency=8)
        t0 = time.perf_counter()
        res = await collector.run(
            Selection(keys, None, "1minute", months, ("CE", "PE", "FUT"), spec)
        )
        wall = time.perf_counter() - t0
        candles = res.counters.candles
        await client.aclose()
    asked = app.stats.by_endpoint["historical_candle"]
    print(
        f"{spec or 'all':>5}: {asked:6,} candle requests, {candles:10,} candles, "
        f"{res.state.value}, {wall:5.1f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stocks", type=int, default=6, help="every 30th stock of the simulator")
    ap.add_argument("--months", type=int, default=3)
    args = ap.parse_args()
    market = Market(seed=7, today=TODAY, stocks=True)
    stocks = [u.key for u in market.underlyings() if u.underlying_type == "EQUITY"]
    keys = stocks[:: max(1, len(stocks) // args.stocks)][: args.stocks]
    print(f"{len(keys)} stocks, every offered expiry, 1minute, {args.months} months, CE/PE/FUT")
    for spec in (None, "10%", "5%", "5", "2"):
        app = SimulatorApp(Market(seed=7, today=TODAY, stocks=True), rate_limit=None)
        asyncio.run(one(app, keys, spec, args.months))


if __name__ == "__main__":
    main()
