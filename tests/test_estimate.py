"""Estimates that hold: the whole selection through the shared windows, from the budget used."""

from __future__ import annotations

from expirytrack_desktop.collect import Selection
from expirytrack_desktop.collect.estimate import describe_days, wall_seconds
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from tests.collect_helpers import NIFTY, make_app, make_collector, make_db

REAL = RateLimitSpec.parse("50/1,500/60,2000/1800").windows


def test_the_issues_examples_take_as_long_as_the_windows_make_them():
    assert 60 < wall_seconds(810, REAL, concurrency=8) < 80  # not "16 s"
    assert 1800 < wall_seconds(3234, REAL, concurrency=8) < 2000  # not "6 min"
    assert 5400 < wall_seconds(6466, REAL, concurrency=8) < 5600  # not "1 h"
    days = wall_seconds(150_000, REAL, concurrency=8)
    assert days > 86400 and "backfill of about 1.5 days" in (describe_days(days) or "")
    assert describe_days(3600.0) is None


def test_budget_already_used_delays_the_start():
    fresh = wall_seconds(10, REAL, concurrency=8)
    spent = wall_seconds(10, REAL, concurrency=8, used=[-100.0] * 2000)  # 100 s ago
    assert fresh < 2 and 1700 < spent < 1720  # waits for the half hour to free a slot


async def test_one_estimate_for_several_jobs_counts_their_requests_together(tmp_path):
    app = make_app()
    db = make_db(tmp_path)
    limiter = RateLimiter(RateLimitSpec.parse("20/60"))
    client = UpstoxClient(
        "http://sim.test",
        access_token=DEMO_ACCESS_TOKEN,
        limiter=limiter,
        transport=app.transport(),
    )
    try:
        col = make_collector(db, client)
        exps = app.market.expiries(NIFTY)[-2:]
        await col.run(Selection(["NIFTY"], exps[:1], months=1))  # contracts known, budget spent
        a, b = Selection(["NIFTY"], exps[1:], months=2), Selection(["NIFTY"], exps[1:], months=3)
        one, other = await col.estimate(a), await col.estimate(b)
        both = await col.estimate([a, b])
        assert both.requests == one.requests + other.requests
        assert both.seconds > max(one.seconds, other.seconds)
        used = limiter.ledger.counts(limiter.clock(), [60.0])[0]
        assert used > 0
        assert f"{used} request(s) already sent still count" in " ".join(both.notes)
    finally:
        await client.aclose()
        db.close()
