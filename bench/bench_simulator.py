"""Simulator speed: generating every contract of one full NIFTY expiry, and serving it.

Run: .venv/bin/python bench/bench_simulator.py
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import httpx

from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp

NIFTY = "NSE_INDEX|Nifty 50"
TODAY = date(2025, 6, 1)


def generate(weekly: bool) -> None:
    market = Market(seed=7, today=TODAY, cache_contracts=1)  # nothing reused between contracts
    e = [x for x in market.expiries(NIFTY) if market.is_weekly(NIFTY, x) == weekly][-1]
    t0 = time.perf_counter()
    items = market.option_contracts(NIFTY, e) + market.future_contracts(NIFTY, e)
    candles = sum(len(market.candles(it["instrument_key"])) for it in items)
    dt = time.perf_counter() - t0
    kind = "weekly" if weekly else "monthly"
    print(
        f"generate NIFTY {kind} expiry {e}: {len(items)} contracts, {candles:,} 1-minute candles "
        f"in {dt:.2f} s = {candles / dt:,.0f} candles/s"
    )


async def serve_in_process() -> None:
    market = Market(seed=7, today=TODAY)
    app = SimulatorApp(market, rate_limit=None)
    e = [x for x in market.expiries(NIFTY) if not market.is_weekly(NIFTY, x)][-1]
    items = market.option_contracts(NIFTY, e) + market.future_contracts(NIFTY, e)
    headers = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"}
    async with httpx.AsyncClient(
        transport=app.transport(), base_url="http://sim", headers=headers
    ) as c:
        t0 = time.perf_counter()
        n = candles = 0
        for it in items:
            to = e
            while to > e - timedelta(days=95):
                # 30-day windows, as a client under a 1-minute span cap of 30 days asks
                frm = to - timedelta(days=29)
                r = await c.get(
                    f"/v2/expired-instruments/historical-candle/{it['instrument_key']}"
                    f"/1minute/{to}/{frm}"
                )
                candles += len(r.json()["data"]["candles"])
                n += 1
                to = frm - timedelta(days=1)
        dt = time.perf_counter() - t0
    print(
        f"serve in-process, 1-minute, 30-day windows: {n} requests, {candles:,} candles "
        f"in {dt:.2f} s = {n / dt:,.0f} requests/s, {candles / dt:,.0f} candles/s "
        "(generation + JSON + client parse)"
    )


if __name__ == "__main__":
    generate(weekly=False)
    generate(weekly=True)
    asyncio.run(serve_in_process())
