"""Deadline-first: whatever vanishes from Upstox first (the oldest expiry) is fetched first,
across underlyings in one plan and across jobs sharing one rate limiter."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date

from expirytrack_desktop.collect import Selection
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import SEND_SCOPE, RateLimiter, RateLimitSpec, SendScope
from tests.collect_helpers import NIFTY, TODAY, make_collector, make_db
from tests.test_limiter import FakeClock

BANKNIFTY = "NSE_INDEX|Nifty Bank"


class OrderApp(SimulatorApp):
    """The simulator, plus the expired key of every candle request in arrival order."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.candle_keys: list[str] = []

    async def handle(self, method, path, query, headers, body):
        if "/historical-candle/" in path:
            self.candle_keys.append(path.split("/historical-candle/")[1].split("/")[0])
        return await super().handle(method, path, query, headers, body)


def client_for(app: SimulatorApp, spec: str) -> UpstoxClient:
    return UpstoxClient(
        "http://sim.test",
        access_token=DEMO_ACCESS_TOKEN,
        limiter=RateLimiter(RateLimitSpec.parse(spec)),
        transport=app.transport(),
    )


def expiry_of(db) -> dict[str, tuple[str, date]]:
    rows = db.execute(
        "SELECT c.expired_key, u.instrument_key, e.expiry_date FROM contract c "
        "JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id"
    )
    return {k: (u, date.fromisoformat(e)) for k, u, e in rows}


async def test_a_plan_fetches_the_oldest_expiry_first_across_underlyings(tmp_path):
    market = Market(
        seed=5, today=TODAY, underlyings=("NIFTY", "BANKNIFTY"), strikes_per_side=1, history_days=60
    )
    app = OrderApp(market, rate_limit=None)
    db = make_db(tmp_path)
    client = client_for(app, "100000/1")
    try:
        col = make_collector(db, client, concurrency=1)
        r = await col.run(Selection(["NIFTY", "BANKNIFTY"], None, months=1))
        assert r.state == "completed"
        of = expiry_of(db)
        fetched = [of[k] for k in app.candle_keys]
        dates = [d for _, d in fetched]
        assert dates == sorted(dates)  # oldest expiry first, whichever underlying
        # both underlyings' expiries interleave (not all of one, then the other)
        switches = sum(1 for a, b in itertools.pairwise(fetched) if a[0] != b[0])
        assert switches >= 2  # fetched per underlying, it would switch once
    finally:
        await client.aclose()
        db.close()


class ListOrderApp(SimulatorApp):
    """The simulator, plus (kind, expiry date) of every contract-list and candle request."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, date]] = []

    async def handle(self, method, path, query, headers, body):
        q = query.decode() if isinstance(query, bytes) else query
        if "/historical-candle/" in path:
            key = path.split("/historical-candle/")[1].split("/")[0]
            day, month, year = key.rsplit("|", 1)[1].split("-")
            self.seen.append(("candles", date(int(year), int(month), int(day))))
        elif path.endswith("/contract") and "expiry_date=" in q:
            self.seen.append(("list", date.fromisoformat(q.split("expiry_date=")[1][:10])))
        return await super().handle(method, path, query, headers, body)


async def test_contract_lists_of_later_expiries_wait_for_the_candles_of_older_ones(tmp_path):
    """A universe lists ~1,500 expiries: listing every one before any candle would hold back
    the candles that vanish first by half an hour of the rate budget."""
    market = Market(
        seed=5, today=TODAY, underlyings=("NIFTY", "BANKNIFTY"), strikes_per_side=1, history_days=60
    )
    app = ListOrderApp(market, rate_limit=None)
    db = make_db(tmp_path)
    client = client_for(app, "100000/1")
    try:
        seen_progress = []  # (progress, requests seen by then)
        r = await make_collector(db, client, concurrency=4).run(
            Selection(["NIFTY", "BANKNIFTY"], None, months=1),
            on_progress=lambda p: seen_progress.append((p, len(app.seen))),
        )
        assert r.state == "completed"
        dates = sorted({d for _, d in app.seen})
        assert len(dates) >= 3
        # every contract list to come counts in the total from the start: while a later
        # date's lists are still to be asked for, the progress never shows everything done
        last_list = max(i for i, (kind, _) in enumerate(app.seen) if kind == "list")
        early = [p for p, n in seen_progress if n <= last_list and p.items_total]
        assert early and all(p.items_done < p.items_total for p in early)
        for older, newer in itertools.pairwise(dates):
            last_candle_of_older = max(
                i for i, (kind, d) in enumerate(app.seen) if d == older and kind == "candles"
            )
            first_list_of_newer = min(
                i for i, (kind, d) in enumerate(app.seen) if d == newer and kind == "list"
            )
            assert last_candle_of_older < first_list_of_newer, (older, newer)
    finally:
        await client.aclose()
        db.close()


async def test_the_limiter_serves_waiting_requests_by_priority_then_arrival():
    clock = FakeClock()
    limiter = RateLimiter(RateLimitSpec.parse("1/1"), clock=clock, sleep=clock.sleep, margin=0)
    first = await limiter.acquire()  # in flight: everyone below waits until it is answered
    order: list[str] = []

    async def send(name: str, priority: int) -> None:
        SEND_SCOPE.set(SendScope(priority=priority))
        (await limiter.acquire()).release()
        order.append(name)

    tasks = []
    for name, prio in [("a", 20), ("b", 10), ("c", 30), ("d", 10), ("e", 5)]:
        tasks.append(asyncio.ensure_future(send(name, prio)))
        await asyncio.sleep(0)  # arrive in this order
    for _ in range(10):
        await asyncio.sleep(0)
    assert order == []
    first.release()
    await asyncio.gather(*tasks)
    assert order == ["e", "b", "d", "a", "c"]


async def test_jobs_sharing_a_limiter_give_the_next_slot_to_the_oldest_expiry(tmp_path):
    market = Market(seed=5, today=TODAY, underlyings=("NIFTY",), strikes_per_side=3)
    app = OrderApp(market, rate_limit=None)
    exps = market.expiries(NIFTY)
    older, newer = exps[-4:-2], exps[-2:]
    db = make_db(tmp_path)
    client = client_for(app, "2/0.1")  # bursts of 2 (< each job's 4 workers): the limiter binds
    try:
        col = make_collector(db, client, concurrency=4)
        job_new = await col.start(Selection(["NIFTY"], newer, months=1))
        while not app.candle_keys:  # the newer job is already fetching candles
            await asyncio.sleep(0.005)
        job_old = await col.start(Selection(["NIFTY"], older, months=1))
        r_new, r_old = await job_new.wait(), await job_old.wait()
        assert r_new.state == r_old.state == "completed"
        of = expiry_of(db)
        is_old = [of[k][1] in older for k in app.candle_keys]
        first_old = is_old.index(True)
        last_old = len(is_old) - 1 - is_old[::-1].index(True)
        newer_between = sum(1 for x in is_old[first_old:last_old] if not x)
        assert r_old.counters.windows_planned > 10 and first_old > 0
        # once the older job's windows wait, the newer job gets no slot until they are done
        # (at most the 4 it was granted just before the older job's first)
        assert newer_between <= 4
    finally:
        await client.aclose()
        db.close()
