"""Rate limiter under unlimited demand on a simulated clock (no real sleeping).

Two simulated hours, 50 tasks asking for requests as fast as they are granted. Reports how
many requests were issued against what the three windows allow at most, checks every
sliding window exactly (zero violations expected), and measures the per-request cost of
the SQLite ledger that shares the budget between processes.

    .venv/bin/python bench/bench_limiter.py
"""

from __future__ import annotations

import asyncio
import bisect
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from expirytrack_desktop.upstox.ledger import MemoryLedger, SqliteLedger
from expirytrack_desktop.upstox.limiter import (
    DEFAULT_MARGIN_S,
    RateLimiter,
    RateLimitSpec,
)

HORIZON_S = 2 * 3600.0
TASKS = 50


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def busiest(times: list[float], span: float) -> int:
    """Most sends in any window [t, t + span) -- the server's sliding window, checked exactly."""
    return max((bisect.bisect_left(times, t + span) - i for i, t in enumerate(times)), default=0)


def allowance(spec: RateLimitSpec, horizon: float) -> int:
    """Upper bound for any schedule: split [0, horizon) into ceil(horizon / w) windows."""
    return min(math.ceil(horizon / w) * limit for limit, w in spec.windows)


async def simulate(spec: RateLimitSpec, ledger) -> tuple[list[float], float]:
    start = 1_800_000_000.0
    clock = SimClock(start)
    limiter = RateLimiter(spec, clock=clock, sleep=clock.sleep, ledger=ledger)
    sent: list[float] = []
    end = start + HORIZON_S

    async def demand() -> None:
        while True:
            (await limiter.acquire()).release()  # answered instantly
            if clock() >= end:
                return
            sent.append(clock() - start)

    t0 = time.perf_counter()
    await asyncio.gather(*(demand() for _ in range(TASKS)))
    return sorted(sent), time.perf_counter() - t0


def report(name: str, spec: RateLimitSpec, ledger) -> bool:
    sent, wall = asyncio.run(simulate(spec, ledger))
    allowed = allowance(spec, HORIZON_S)
    share = len(sent) / allowed
    print(f"{name}: spec {spec}, margin {DEFAULT_MARGIN_S} s, {TASKS} tasks, 2 simulated hours")
    print(f"  issued {len(sent)} of {allowed} allowed = {share:.2%}   (wall {wall:.2f} s)")
    violations = 0
    for limit, w in spec.windows:
        peak = busiest(sent, w)
        over = sum(1 for i, t in enumerate(sent) if bisect.bisect_left(sent, t + w) - i > limit)
        violations += over
        print(f"  window {limit}/{w:g}s: busiest {peak}, windows over the limit: {over}")
    ok = share >= 0.99 and violations == 0
    print(f"  -> {'PASS' if ok else 'FAIL'} (need >= 99% and zero violations)")
    return ok


def ledger_cost() -> None:
    """Per-reserve cost with a steady-state table (~2000 rows inside the 30-minute window)."""
    windows = ((10**9, 1.1), (10**9, 60.1), (10**9, 1800.1))
    with tempfile.TemporaryDirectory() as tmp:
        other = SqliteLedger(Path(tmp) / "shared.sqlite")  # another process, less urgent
        other.reserve(0.0, ((1, 1.0),))
        other.reserve(0.5, ((1, 1.0),), priority=800_000)  # refused: it waits, published
        for name, ledger, priority in (
            ("SqliteLedger", SqliteLedger(Path(tmp) / "ledger.sqlite"), None),
            (
                "SqliteLedger with a priority, another process waiting",
                SqliteLedger(Path(tmp) / "shared.sqlite", yield_grace_s=1e12),
                739_000,
            ),
            ("MemoryLedger", MemoryLedger(), None),
        ):
            now = 1_800_000_000.0
            for _ in range(2000):  # warm: fill the half-hour window
                now += 0.9
                ledger.complete(ledger.reserve(now, windows, priority).ticket, now + 0.05)
            n = 5000
            t0 = time.perf_counter()
            for _ in range(n):
                now += 0.9
                ledger.complete(ledger.reserve(now, windows, priority).ticket, now + 0.05)
            per = (time.perf_counter() - t0) / n * 1e6
            print(f"  {name} reserve+complete: {per:.1f} us per request (2000 rows in window)")
            ledger.close()
        other.close()


def main() -> int:
    ok = report("memory ledger", RateLimitSpec.parse("50/1,500/60,2000/1800"), MemoryLedger())
    ok &= report("memory ledger, older limits", RateLimitSpec.parse("25/1,250/60,1000/1800"),
                 MemoryLedger())  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        led = SqliteLedger(Path(tmp) / "ledger.sqlite")
        ok &= report("sqlite ledger", RateLimitSpec.parse("50/1,500/60,2000/1800"), led)
        led.close()
    print("ledger cost:")
    ledger_cost()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
