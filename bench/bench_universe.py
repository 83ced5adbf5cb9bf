"""The simulator's F&O universe: master size and parse time, and how thin stock contracts are.

Run: .venv/bin/python bench/bench_universe.py
"""

from __future__ import annotations

import asyncio
import gzip
import statistics
import time
from datetime import date

from expirytrack_desktop.sandbox import SimulatorApp, serve, tradingcal
from expirytrack_desktop.sandbox.market import Market
from expirytrack_desktop.sandbox.master import master_gzip
from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH
from expirytrack_desktop.upstox.master import download_master, parse_master

TODAY = date(2025, 11, 20)


def master(market: Market) -> None:
    t0 = time.perf_counter()
    gz = master_gzip(market)
    built = time.perf_counter() - t0
    raw = len(gzip.decompress(gz))
    best = min(_timed(lambda: parse_master([gz[i : i + 65536] for i in range(0, len(gz), 65536)]))
               for _ in range(3))  # fmt: skip
    summary = parse_master([gz])
    print(
        f"master: {summary.rows:,} rows ({summary.fo_rows:,} F&O), {len(gz) / 1e6:.2f} MB gzip, "
        f"{raw / 1e6:.1f} MB JSON, {len(summary.underlyings)} F&O underlyings; built in "
        f"{built:.2f} s; parsed (gunzip + ijson, streamed) in {best:.2f} s = "
        f"{raw / 1e6 / best:.0f} MB/s, {summary.rows / best:,.0f} rows/s"
    )
    app = SimulatorApp(market, rate_limit=None)
    with serve(app) as url:
        asyncio.run(download_master(url + INSTRUMENT_MASTER_PATH))  # the app builds it once
        t0 = time.perf_counter()
        asyncio.run(download_master(url + INSTRUMENT_MASTER_PATH))
        wire = time.perf_counter() - t0
    print(f"download + parse from the simulator on 127.0.0.1: {wire:.2f} s")


def _timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def thin(market: Market) -> None:
    stocks = [u for u in market.underlyings() if u.underlying_type == "EQUITY"]
    per_contract: list[int] = []
    per_day: list[float] = []
    futures: list[float] = []
    t0 = time.perf_counter()
    n = 0
    for u in stocks[::5]:
        e = market.expiries(u.key)[-2]
        items = market.option_contracts(u.key, e) + market.future_contracts(u.key, e)
        for it in items:
            rows = market.candles(it["instrument_key"])
            n += 1
            first = date.fromisoformat(rows[0][0][:10]) if rows else e
            days = len(tradingcal.trading_days(first, e))
            if it["instrument_type"] == "FUT":
                futures.append(len(rows) / days)
            else:
                per_contract.append(len(rows))
                per_day.append(len(rows) / days)
    dt = time.perf_counter() - t0
    q = statistics.quantiles(per_day, n=10)
    print(
        f"stock options ({len(per_contract)} contracts of {len(stocks[::5])} stocks, one monthly "
        f"expiry each, listed ~3 months): candles per contract median "
        f"{statistics.median(per_contract):.0f}, mean {statistics.mean(per_contract):.0f}; "
        f"per trading day median {statistics.median(per_day):.1f}, p10 {q[0]:.1f}, "
        f"p90 {q[-1]:.1f}; stock futures median {statistics.median(futures):.0f}/day"
    )
    print(f"generation: {n} contracts in {dt:.2f} s = {1000 * dt / n:.1f} ms per contract")


def main() -> None:
    t0 = time.perf_counter()
    market = Market(seed=7, today=TODAY, stocks=True)
    print(
        f"Market(stocks=True): {len(market.underlying_keys())} underlyings in "
        f"{time.perf_counter() - t0:.2f} s (contracts are built per expiry on first use)"
    )
    master(market)
    thin(market)


if __name__ == "__main__":
    main()
