"""Span cap unknown to the client: the simulator caps 1-minute spans at 30 days.

A contract's 95-day window is fetched through ``fetch_window`` with a fresh ``SpanPolicy``
(default belief: 93 days) from the simulator on a loopback port. Expected: every candle the
simulator holds for the contract arrives exactly once, and the requests spent are at most
``ceil(active days / 30) + 1`` (active days = calendar days from its first to its last candle).

    .venv/bin/python bench/bench_span.py
"""

from __future__ import annotations

import asyncio
import math
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp, serve
from expirytrack_desktop.timeutil import ist_date, parse_ts
from expirytrack_desktop.upstox.factory import make_client, process_limiter
from expirytrack_desktop.upstox.span import SpanPolicy, fetch_window

SPEC = "50/1,500/60,2000/1800"
WINDOW_DAYS = 95


def pick_contract(market: Market) -> tuple[str, list[tuple]]:
    """The monthly future with the longest life (first to last candle)."""
    best = None
    for key in market.underlying_keys():
        for expiry in market.expiries(key):
            for item in market.future_contracts(key, expiry):
                rows = market.candles(item["instrument_key"])
                if not rows:
                    continue
                life = (ist_date(parse_ts(rows[-1][0])) - ist_date(parse_ts(rows[0][0]))).days
                if best is None or life > best[0]:
                    best = (life, item["instrument_key"], rows)
        if best is not None:
            break
    assert best is not None
    return best[1], best[2]


async def fetch(base: str, key: str, from_date, to_date):
    learned: list[tuple[str, int]] = []
    policy = SpanPolicy(on_learn=lambda interval, cap: learned.append((interval, cap)))
    async with make_client(base, DEMO_ACCESS_TOKEN, limiter=process_limiter(SPEC)) as client:
        got = await fetch_window(client, key, "1minute", from_date, to_date, policy)
        return got, learned, client.requests_sent


def main() -> int:
    market = Market(seed=11)
    key, rows = pick_contract(market)
    truth = [
        (parse_ts(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]
    first, last = ist_date(truth[0][0]), ist_date(truth[-1][0])
    active = (last - first).days + 1
    to_date = last
    from_date = to_date - timedelta(days=WINDOW_DAYS - 1)
    app = SimulatorApp(market, rate_limit=SPEC, span_cap_days={"1minute": 30})
    with serve(app, port=0) as base:
        got, learned, sent = asyncio.run(fetch(base, key, from_date, to_date))
    budget = math.ceil(active / 30) + 1
    complete = got.candles == truth
    print(f"span: contract {key}, window {from_date}..{to_date} ({WINDOW_DAYS} days)")
    print(f"  simulator: {len(truth)} candles, active {first}..{last} = {active} calendar days")
    print(f"  client: {len(got.candles)} candles, identical to the simulator's: {complete}")
    print(f"  requests {got.requests} (rejected {got.rejected}), HTTP sent {sent}, "
          f"budget ceil({active}/30)+1 = {budget}")  # fmt: skip
    print(f"  learned {learned}; sub-windows {[(str(a), str(b)) for a, b in got.subwindows]}")
    print(f"  server: 400s {app.stats.by_status.get(400, 0)}, 429s {app.stats.rate_limited}")
    ok = complete and got.requests <= budget and app.stats.rate_limited == 0
    print(f"  -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
