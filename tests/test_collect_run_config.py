"""Each job runs under its own RunConfig: starting another job or an estimate with another
concurrency (as a second wizard does) never changes a running job's parallelism."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from expirytrack_desktop.collect import Selection
from tests.collect_helpers import NIFTY, make_app, make_client, make_collector, make_db


class Gauge:
    """Wraps a client: counts candle requests in flight per expired key's expiry, and holds
    the contract lists of ``hold`` expiries until ``release`` is set. The candle requests of
    the ``wide`` expiry wait (up to 0.2 s each) until 3 are in flight, once: a job allowed more
    than 2 then shows it however busy the machine is (a full run once saw a peak of exactly 2
    with only a 5 ms overlap to go by); a job held to 2 never gets there."""

    def __init__(self, inner, hold, release: asyncio.Event, wide: str = "") -> None:
        self.inner, self.hold, self.release, self.wide = inner, hold, release, wide
        self.expiry_of: dict[str, str] = {}
        self.now: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get_option_contracts(self, key, expiry):
        if expiry in self.hold:
            await self.release.wait()
        found = await self.inner.get_option_contracts(key, expiry)
        self.expiry_of.update({c.instrument_key: expiry.isoformat() for c in found})
        return found

    async def get_future_contracts(self, key, expiry):
        found = await self.inner.get_future_contracts(key, expiry)
        self.expiry_of.update({c.instrument_key: expiry.isoformat() for c in found})
        return found

    async def get_candle_rows(self, key, interval, f, t):
        e = self.expiry_of[key]
        self.now[e] += 1
        self.peak[e] = max(self.peak[e], self.now[e])
        try:
            await asyncio.sleep(0.005)  # let the job's other workers start theirs meanwhile
            if e == self.wide:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 0.2
                while self.peak[e] < 3 and loop.time() < deadline:
                    await asyncio.sleep(0.001)
            return await self.inner.get_candle_rows(key, interval, f, t)
        finally:
            self.now[e] -= 1


async def test_a_running_jobs_concurrency_is_fixed_when_it_starts(tmp_path):
    app = make_app(strikes=4)
    first, second = app.market.expiries(NIFTY)[-2:]
    db = make_db(tmp_path)
    release = asyncio.Event()
    client = Gauge(make_client(app), {first}, release, wide=second.isoformat())
    col = make_collector(db, client, concurrency=3)
    try:
        job_a = await col.start(Selection(["NIFTY"], [first], months=1), concurrency=2)
        while job_a.snapshot().phase != "contracts":
            await asyncio.sleep(0.001)
        # another wizard: an estimate, then a job, both with 8 requests in flight
        await col.estimate(Selection(["NIFTY"], [second], months=1), concurrency=8)
        job_b = await col.start(Selection(["NIFTY"], [second], months=1), concurrency=8)
        release.set()
        ra, rb = await job_a.wait(), await job_b.wait()
        assert ra.state == rb.state == "completed"
        assert ra.counters.windows_planned > 8 and rb.counters.windows_planned > 8
        assert job_a.config.concurrency == 2 and job_b.config.concurrency == 8
        # never above its own 2 (the old code re-read the collector's value: up to 8); how
        # often two of its requests overlap is up to the scheduler, so 1 is possible too
        assert 1 <= client.peak[first.isoformat()] <= 2
        assert client.peak[second.isoformat()] > 2
        assert col.concurrency == 3  # the collector's default is untouched too
    finally:
        await client.aclose()
        db.close()
