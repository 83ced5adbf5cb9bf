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


def _nifty_monthlies(tmp_path, n: int):  # type: ignore[no-untyped-def]
    """The simulator (NIFTY), a database, a client without a rate limit, the last n monthlies."""
    app = make_app()
    client = UpstoxClient("http://sim.test", access_token=DEMO_ACCESS_TOKEN,
                          limiter=RateLimiter(RateLimitSpec.parse("100000/1")),
                          transport=app.transport())  # fmt: skip
    m = app.market
    monthlies = [d for d in m.expiries(NIFTY) if not m.is_weekly(NIFTY, d)][-n:]
    return app, make_db(tmp_path), client, monthlies


async def test_contracts_of_unlisted_expiries_come_from_the_master_then_listed_ones(tmp_path):
    """Before an expiry's contracts are listed the estimate counted 200 for it (a stock
    lists ~50-150 on Upstox, an index several hundred): now the most one live expiry lists
    in the instrument master, and once some of the underlying's expiries are listed, the
    median of those."""
    from expirytrack_desktop.collect.universe import refresh_universe
    from expirytrack_desktop.sandbox.master import master_gzip
    from tests.collect_helpers import TODAY

    app, db, client, monthlies = _nifty_monthlies(tmp_path, 2)
    m, key = app.market, NIFTY
    lists = [len(m.option_contracts(key, d)) + len(m.future_contracts(key, d)) for d in monthlies]
    try:
        col = make_collector(db, client)
        first = await col.estimate(Selection(["NIFTY"], monthlies, months=1))
        assert first.contracts == 2 * 200 and first.is_estimate
        assert any("200 per expiry assumed" in n for n in first.notes)
        master = tmp_path / "complete.json.gz"
        master.write_bytes(master_gzip(m))
        assert (await refresh_universe(db, str(master), today=TODAY)).state == "fetched"
        hinted = await col.estimate(Selection(["NIFTY"], monthlies, months=1))
        assert hinted.contracts == sum(lists) and not any("200" in n for n in hinted.notes)
        await col.run(Selection(["NIFTY"], monthlies[:1], months=1))  # one expiry listed
        db.kv_set("universe_contracts_per_expiry", '{"NSE_INDEX|Nifty 50": 999}')  # a stale
        later = await col.estimate(Selection(["NIFTY"], monthlies[1:], months=1))
        assert later.contracts == lists[0]  # the listed expiry's count wins over the master
        # a weekly (known as one from the stored expiry list) counts as the master's weeklies
        week = max(d for d in m.expiries(key) if m.is_weekly(key, d) and d < monthlies[0])
        weekly = await col.estimate(Selection(["NIFTY"], [week], months=1))
        assert weekly.contracts == len(m.option_contracts(key, week)) < lists[0]
    finally:
        await client.aclose()
        db.close()


async def test_spans_are_planned_at_one_month_until_the_api_accepts_wider(tmp_path):
    """Before the span cap is learned, an estimate plans the usual one-month cap (a quarter
    of the requests if planned at the 93 days the run asks for and the API then refuses
    them); once the API has accepted a 3-month request, it plans with that."""
    from expirytrack_desktop.collect.plan import target_range
    from expirytrack_desktop.store.coverage import chunk_range

    _app, db, client, monthlies = _nifty_monthlies(tmp_path, 3)  # any span accepted
    try:
        col = make_collector(db, client)
        await col.run(Selection(["NIFTY"], monthlies[:1], months=1))  # lists, spans ~1 month
        sel = Selection(["NIFTY"], monthlies[2:], months=3)
        n = len(db.contracts_for(NIFTY, monthlies[0]))
        est = await col.estimate(sel)
        days = db.span_proven()["1minute"]
        assert 30 < days < 40 and "span cap" in " ".join(est.notes)
        assert est.windows == n * len(chunk_range(target_range(monthlies[2], 3), days)) > n
        await col.run(Selection(["NIFTY"], monthlies[1:2], months=3))  # 3-month requests
        assert db.span_proven()["1minute"] >= 90 and not db.span_caps()
        assert (await col.estimate(sel)).windows == n  # one request per contract
    finally:
        await client.aclose()
        db.close()


async def test_a_stock_the_master_no_longer_lists_counts_as_its_median_peer(tmp_path):
    """A stock that left F&O is in no instrument master: before one of its expiries is
    listed, its expiries counted a round 200 (stocks list ~50-150): now the median of the
    master's stocks (an index's unlisted weekly: of the master's index weeklies)."""
    from datetime import date

    _app, db, client, _ = _nifty_monthlies(tmp_path, 1)
    gone = "NSE_EQ|INE000GONE01"
    db.kv_set(
        "universe_contracts_per_expiry",
        '{"NSE_EQ|INE0A": 40, "NSE_EQ|INE0B": 70, "NSE_EQ|INE0C": 130, "NSE_INDEX|Nifty 50": 900}',
    )
    db.kv_set("universe_contracts_per_weekly", '{"NSE_INDEX|Nifty 50": 500}')
    assert db.peer_contracts_per_expiry() == {
        (True, False): 70,
        (False, False): 900,
        (False, True): 500,
    }
    try:
        col = make_collector(db, client)
        days = [date(2026, 9, 24), date(2026, 10, 29)]
        est = await col.estimate(Selection([gone], days, months=1))
        assert est.contracts == 2 * 70
        [note] = [n for n in est.notes if "per expiry assumed" in n]
        assert "70 per expiry assumed, the median of the master's stocks" in note
        assert note.startswith(f"contracts of {gone} not known (not in the instrument master")
        index = await col.estimate(Selection(["BSE_INDEX|GONE"], days, months=1))
        assert index.contracts == 2 * 900  # unknown weekly flag, last of the month: monthly
        db.kv_set("universe_contracts_per_expiry", "{}")  # no stock in the master at all
        db.kv_set("universe_contracts_per_weekly", "{}")
        blind = await col.estimate(Selection([gone], days, months=1))
        assert blind.contracts == 2 * 200
        assert any("200 per expiry assumed (the instrument master" in n for n in blind.notes)
    finally:
        await client.aclose()
        db.close()
