"""The collection engine against the in-process simulator: exactness, resume, errors, control."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from contextlib import closing
from datetime import date, timedelta

import httpx
import pytest

from expirytrack_desktop.collect import (
    JobState,
    Phase,
    Progress,
    Selection,
    SelectionError,
    StopReason,
    target_range,
)
from expirytrack_desktop.collect.plan import ContractTarget, plan_windows
from expirytrack_desktop.sandbox import FaultConfig
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.coverage import chunk_range
from expirytrack_desktop.upstox.errors import BadInputError, ServerError
from tests.collect_helpers import (
    NIFTY,
    ground_truth_rows,
    make_app,
    make_collector,
)


def last_expiries(app, n=1):
    return app.market.expiries(NIFTY)[-n:]


def assert_exact(db, app, expiries, months=1, interval="1minute"):
    """Every contract and candle the simulator has in the target windows; nothing else."""
    market = app.market
    want_keys = set()
    total = 0
    for exp in expiries:
        items = market.option_contracts(NIFTY, exp) + market.future_contracts(NIFTY, exp)
        keys = {i["instrument_key"] for i in items}
        want_keys |= keys
        got = {c.expired_key for c in db.contracts_for(NIFTY, exp)}
        assert got == keys
        f, t = target_range(exp, months)
        for key in keys:
            want = ground_truth_rows(market, key, interval, f, t)
            assert db.candle_rows(key, interval) == want, key
            total += len(want)
    assert db.execute("SELECT count(*) FROM candle")[0][0] == total
    assert total > 0
    return total


async def test_full_collection_is_exact_and_a_rerun_fetches_nothing(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app, 2)
    db = opened.db(tmp_path)
    client = opened.client(app)
    events: list[Progress] = []
    col = make_collector(db, client)
    result = await col.run(Selection(["NIFTY"], exps), on_progress=events.append)
    assert (result.state, result.reason) == (JobState.COMPLETED, StopReason.OK)
    total = assert_exact(db, app, exps, months=3)
    c = result.counters
    assert c.candles == total and c.windows_failed == 0 and c.windows_refetched == 0
    assert c.requests == app.stats.requests == 1 + c.contract_requests + c.candle_requests
    # metadata: weekly flag from the API, OpenAlgo symbols, documented views
    rows = db.execute(
        "SELECT contract_type, openalgo_symbol, freeze_quantity, lot_size FROM contracts"
    )
    assert all(r["openalgo_symbol"] and r["openalgo_symbol"].startswith("NIFTY") for r in rows)
    assert {r["contract_type"] for r in rows} >= {"CE", "PE"}
    exp_rows = db.execute(
        "SELECT expiry_date, is_weekly, contracts_fetched, data_fetched FROM expiries"
    )
    flags = {r[0]: (r[1], r[2], r[3]) for r in exp_rows}
    for e in exps:
        assert flags[e.isoformat()] == (int(app.market.is_weekly(NIFTY, e)), 1, 1)
    assert [cv.state for cv in db.coverage() if cv.expiry_date in exps] == ["complete"] * 2
    # progress: typed, final snapshot consistent
    last = events[-1]
    assert (last.state, last.phase) == (JobState.COMPLETED, Phase.DONE)
    assert last.items_done == last.items_total == result.counters.windows_planned + 2
    assert last.candles == total and last.errors == 0
    job = db.get_job(result.job_id)
    assert (job.status, job.candles, job.failed_items) == ("completed", total, 0)

    before = app.stats.requests
    again = await col.run(Selection(["NIFTY"], exps))
    assert again.state == JobState.COMPLETED
    assert again.counters.windows_planned == 0
    assert app.stats.requests - before == 1  # only the expiry list


async def test_span_cap_is_learned_persisted_and_planned_with(opened, tmp_path):
    app = make_app(span_cap={"1minute": 30})
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    result = await make_collector(db, client).run(Selection(["NIFTY"], exps, months=1))
    assert result.state == JobState.COMPLETED
    assert result.counters.spans_rejected >= 1
    assert_exact(db, app, exps)
    assert db.span_caps()["1minute"] <= 30
    two = last_expiries(app, 2)
    est = await make_collector(db, client).estimate(Selection(["NIFTY"], two, months=1))
    # the collected expiry needs nothing; the other is estimated at the learned cap, with as
    # many contracts as the listed expiry of the same underlying has
    cap = db.span_caps()["1minute"]
    per_contract = len(chunk_range(target_range(two[0], 1), cap))
    listed = len(db.contracts_for(NIFTY, exps[0]))
    assert per_contract >= 2 and listed > 0
    assert est.is_estimate and est.windows == listed * per_contract


async def test_faulty_api_still_gives_exact_data(opened, tmp_path):
    faults = FaultConfig(http_500=0.05, truncated_json=0.02, drop_connection=0.02, seed=5)
    app = make_app(faults=faults)
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app, max_attempts=8)
    result = await make_collector(db, client).run(Selection(["NIFTY"], exps, months=1))
    assert result.state == JobState.COMPLETED, result.errors
    assert app.stats.faults_injected > 0
    assert_exact(db, app, exps)
    assert app.stats.rate_limited == 0


async def test_token_expiry_pauses_as_needs_login_and_a_new_token_finishes(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app, 2)
    db = opened.db(tmp_path)
    client = opened.client(app)
    app.expire_tokens_after(12)
    first = await make_collector(db, client).run(Selection(["NIFTY"], exps, months=1))
    assert (first.state, first.reason) == (JobState.NEEDS_LOGIN, StopReason.NEEDS_LOGIN)
    assert "log in again" in first.message
    assert db.failed_windows() == []  # an auth stop fails nothing
    assert db.get_job(first.job_id).status == "needs_login"
    stored_before = db.execute("SELECT count(*) FROM fetch_window")[0][0]
    assert stored_before > 0

    client2 = opened.client(app, token=app.issue_token())
    second = await make_collector(db, client2).run(Selection(["NIFTY"], exps, months=1))
    assert second.state == JobState.COMPLETED
    assert second.job_id == first.job_id  # the same job continued
    assert second.counters.windows_refetched == 0
    assert db.get_job(first.job_id).retry_count == 1
    assert_exact(db, app, exps)


class FlakyClient:
    """Wraps a client: candle requests for ``bad`` keys raise ``error``."""

    def __init__(self, inner, bad: set[str], error: Exception) -> None:
        self.inner, self.bad, self.error = inner, bad, error

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get_candles(self, key, interval, f, t):
        if key in self.bad:
            raise self.error
        return await self.inner.get_candles(key, interval, f, t)

    async def get_candle_rows(self, key, interval, f, t):
        if key in self.bad:
            raise self.error
        return await self.inner.get_candle_rows(key, interval, f, t)


@pytest.mark.parametrize(
    "error",
    [
        BadInputError("HTTP 400 UDAPI100011: unknown key", code="UDAPI100011", status=400),
        ServerError("HTTP 500 after 5 attempts", code="UDAPI100500", status=500),
    ],
)
async def test_failed_items_are_recorded_and_retry_failed_fetches_only_them(
    opened, tmp_path, error
):
    app = make_app()
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    victim = app.market.option_contracts(NIFTY, exps[0])[0]["instrument_key"]
    col = make_collector(db, FlakyClient(client, {victim}, error))
    result = await col.run(Selection(["NIFTY"], exps, months=1))
    assert (result.state, result.reason) == (JobState.FAILED, StopReason.FAILED_ITEMS)
    failed = db.failed_windows(result.job_id)
    assert {key for _, key in failed} == {victim}
    assert all(w.error == error.message and w.attempts == 1 for w, _ in failed)
    assert result.counters.windows_failed == len(failed)
    assert db.coverage()[0].state == "failed"
    assert db.get_job(result.job_id).failed_items == len(failed)

    before = app.stats.requests
    job = await make_collector(db, client).retry_failed(result.job_id)
    res2 = await job.wait()
    assert res2.state == JobState.COMPLETED
    assert res2.counters.windows_planned == len(failed)
    assert app.stats.requests - before == len(failed)  # no discovery, only those windows
    assert db.failed_windows() == []
    assert_exact(db, app, exps)


async def test_unknown_instrument_and_missing_expiry_are_bad_input(opened, tmp_path):
    app = make_app()
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client)
    # checked against the live expiry lists before a job row exists: no junk job
    with pytest.raises(SelectionError, match=re.escape("NSE_INDEX|No Such Index")):
        await col.start(Selection(["NSE_INDEX|No Such Index"], months=1))
    with pytest.raises(SelectionError, match="2020-01-02 is not offered by the API"):
        await col.run(Selection(["NIFTY"], [date(2020, 1, 2)], months=1))
    assert db.list_jobs() == [] and col.jobs == {}
    assert db.execute("SELECT count(*) FROM contract")[0][0] == 0
    # a valid selection then fetches each expiry list once (check and job share it)
    before = app.stats.requests
    exp = last_expiries(app)[0]
    offered = await col.check_selection(Selection(["NIFTY"], [exp], months=1))
    assert exp in offered[NIFTY] and app.stats.requests - before == 1
    with pytest.raises(SelectionError, match="malformed"):
        Selection(["Nifty 50"])
    with pytest.raises(SelectionError, match="interval"):
        Selection(["NIFTY"], interval="2minute")


class DeadTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request):
        raise httpx.ConnectError("connection refused", request=request)


async def test_network_down_stops_with_network_reason(opened, tmp_path):
    from expirytrack_desktop.upstox.client import UpstoxClient
    from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

    async def no_sleep(_):
        return None

    client = opened.add(
        UpstoxClient(
            "http://sim.test",
            access_token="t" * 30,
            limiter=RateLimiter(RateLimitSpec.parse("1000/1")),
            transport=DeadTransport(),
            max_attempts=2,
            sleep=no_sleep,
        )
    )
    db = opened.db(tmp_path)
    r = await make_collector(db, client).run(Selection(["NIFTY"], [date(2025, 9, 30)], months=1))
    assert (r.state, r.reason) == (JobState.FAILED, StopReason.NETWORK)
    assert "cannot be reached" in r.message
    assert client.requests_sent == 2


async def test_network_loss_mid_run_then_resume(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    dead = DeadTransport()

    class Switch(httpx.AsyncBaseTransport):
        def __init__(self):
            self.inner, self.n = app.transport(), 0

        async def handle_async_request(self, request):
            self.n += 1
            if self.n > 10:
                return await dead.handle_async_request(request)
            return await self.inner.handle_async_request(request)

    from expirytrack_desktop.upstox.client import UpstoxClient

    async def no_sleep(_):
        return None

    flaky = opened.add(
        UpstoxClient(
            "http://sim.test",
            access_token=client._token,
            limiter=client.limiter,
            transport=Switch(),
            max_attempts=2,
            sleep=no_sleep,
        )
    )
    r = await make_collector(db, flaky, concurrency=2, network_failure_threshold=3).run(
        Selection(["NIFTY"], exps, months=1)
    )
    assert r.reason == StopReason.NETWORK, (r.counters, r.errors[:3])
    r2 = await make_collector(db, client).run(Selection(["NIFTY"], exps, months=1))
    assert r2.state == JobState.COMPLETED and r2.counters.windows_refetched == 0
    assert_exact(db, app, exps)


async def test_cancel_keeps_consistent_progress_and_resume_completes(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app, 2)
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client)
    job = None
    at_cancel: list[int] = []

    def on_progress(p: Progress) -> None:
        if p.phase == Phase.CANDLES and p.items_done >= 8 and job is not None:
            # windows stored: items include the contract lists of the expiries reached so
            # far (one date at a time, oldest first: 1 or 2 here), so at least items - 2
            at_cancel.append(p.items_done - 2)
            job.cancel()  # repeated calls are harmless

    job = await col.start(Selection(["NIFTY"], exps, months=1), on_progress=on_progress)
    r = await job.wait()
    assert (r.state, r.reason) == (JobState.CANCELLED, StopReason.CANCELLED)
    # stops promptly: the progress seen at the cancel, then at most the requests already in
    # flight (concurrency 4) finish and are stored: at most 1 + 4 different counts
    assert len(set(at_cancel)) <= 1 + 4
    assert db.get_job(job.id).status == "cancelled"
    # the user's choice is told as such, not as an error of the run
    said = [(lvl, m) for _, lvl, m in db.job_logs(job.id) if "cancelled" in m]
    assert said == [("info", "cancelled; progress so far is kept")]
    # every window marked done has exactly its candles
    for w in db.execute("SELECT contract_id, from_date, to_date, candles FROM fetch_window"):
        n = db.execute(
            "SELECT count(*) FROM candle WHERE contract_id = ? AND ts >= strftime('%s', ?) - 19800"
            " AND ts < strftime('%s', ?, '+1 day') - 19800",
            (w[0], w[1], w[2]),
        )[0][0]
        assert n == w[3]
    done_before = db.execute("SELECT count(*) FROM fetch_window")[0][0]
    # at most the windows in flight (concurrency 4) completed after the cancel
    assert at_cancel[0] <= done_before <= at_cancel[0] + 5
    r2 = await col.run(Selection(["NIFTY"], exps, months=1))
    assert r2.state == JobState.COMPLETED
    assert r2.counters.windows_refetched == 0
    # the resumed run plans exactly what the cancelled one left, and something was left
    done_after = db.execute("SELECT count(*) FROM fetch_window")[0][0]
    assert 0 < r2.counters.windows_planned == done_after - done_before
    assert_exact(db, app, exps)


async def test_pause_stops_new_requests_until_resume(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client, concurrency=2)
    paused = asyncio.Event()
    job = None

    def on_progress(p: Progress) -> None:
        if p.phase == Phase.CANDLES and p.items_done >= 3 and not paused.is_set():
            job.pause()
            paused.set()

    job = await col.start(Selection(["NIFTY"], exps, months=1), on_progress=on_progress)
    await paused.wait()
    assert job.state == JobState.PAUSED
    for _ in range(20):
        await asyncio.sleep(0.01)
    settled = app.stats.requests
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert app.stats.requests == settled  # nothing new while paused
    assert db.get_job(job.id).status == "paused"
    assert db.list_jobs()[0].status == "paused"  # alive: not taken for interrupted
    job.resume()
    r = await job.wait()
    assert r.state == JobState.COMPLETED
    assert_exact(db, app, exps)


async def test_disk_full_stops_with_storage_reason_and_resume_completes(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app)
    path = tmp_path / "full.sqlite3"
    open_database(path).close()
    with closing(sqlite3.connect(path)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    db = opened.add(open_database(path, max_page_count=pages + 60))
    client = opened.client(app)
    r = await make_collector(db, client).run(Selection(["NIFTY"], exps, months=1))
    assert (r.state, r.reason) == (JobState.FAILED, StopReason.STORAGE)
    assert "Disk full" in r.message
    assert db.integrity_check() == "ok"
    db.close()  # opened again without the page cap
    db = opened.add(open_database(path))
    assert db.get_job(r.job_id).status in ("failed", "running", "interrupted")
    r2 = await make_collector(db, client).run(Selection(["NIFTY"], exps, months=1))
    assert r2.state == JobState.COMPLETED and r2.counters.windows_refetched == 0
    assert_exact(db, app, exps)


async def test_interrupted_job_is_continued_by_the_same_selection(opened, tmp_path):
    import subprocess
    import sys

    app = make_app()
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    sel = Selection(["NIFTY"], exps, months=1)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    jid = db.create_job("collect", sel.to_params())
    db.update_job(jid, status="running", pid=proc.pid)
    assert db.list_jobs()[0].status == "interrupted"
    client = opened.client(app)
    r = await make_collector(db, client).run(sel)
    assert r.job_id == jid and r.state == JobState.COMPLETED


async def test_progress_is_throttled_by_the_injected_clock(opened, tmp_path):
    app = make_app()
    db = opened.db(tmp_path)
    client = opened.client(app)
    events: list[Progress] = []
    frozen = make_collector(db, client, clock=lambda: 1000.0, progress_interval=0.1)
    r = await frozen.run(
        Selection(["NIFTY"], last_expiries(app), months=1), on_progress=events.append
    )
    assert r.state == JobState.COMPLETED
    # a clock that never advances lets through only the forced (state/phase change) events
    assert len(events) <= 6
    assert events[-1].state == JobState.COMPLETED
    with pytest.raises(AttributeError):
        events[0].job_id = 5  # frozen


async def test_estimate_matches_the_plan_once_contracts_are_known(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client)
    sel_fut = Selection(["NIFTY"], exps, months=1, contract_types=["FUT"])
    await col.run(sel_fut)  # stores all contracts, candles of futures only
    flag = "SELECT data_fetched FROM expiries WHERE expiry_date = ?"
    assert db.execute(flag, (exps[0].isoformat(),))[0][0] == 0  # options still missing
    sel = Selection(["NIFTY"], exps, months=1)
    est = await col.estimate(sel)
    r = await col.run(sel)
    assert est.windows == r.counters.windows_planned > 0
    assert est.requests == 1 + r.counters.windows_planned
    assert est.seconds >= 0 and est.contracts == len(db.contracts_for(NIFTY, exps[0]))
    assert db.execute(flag, (exps[0].isoformat(),))[0][0] == 1


def test_planner_is_pure_and_plans_only_gaps():
    t = ContractTarget(1, "K", date(2025, 1, 1), date(2025, 3, 31), "K")
    covered = {1: [(date(2025, 1, 1), date(2025, 1, 31), "fetched"),
                   (date(2025, 2, 1), date(2025, 2, 10), "failed"),
                   (date(2025, 3, 1), date(2025, 3, 31), "empty")]}  # fmt: skip
    tasks = plan_windows([t], covered, "1minute", 20)
    assert [(x.from_date, x.to_date) for x in tasks] == [
        (date(2025, 2, 1), date(2025, 2, 20)),
        (date(2025, 2, 21), date(2025, 2, 28)),
    ]
    assert plan_windows([t], covered, "1minute", 20) == tasks
    assert plan_windows([t], {}, "1minute", None)[0].days == 90


async def test_concurrent_jobs_on_one_client_count_their_own_requests(opened, tmp_path):
    app = make_app()
    e1, e2 = last_expiries(app, 2)
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client)
    j1 = await col.start(Selection(["NIFTY"], [e1], months=1))
    j2 = await col.start(Selection(["NIFTY"], [e2], months=1))
    r1, r2 = await asyncio.gather(j1.wait(), j2.wait())
    assert r1.state == r2.state == JobState.COMPLETED
    assert r1.job_id != r2.job_id
    assert r1.counters.requests + r2.counters.requests == app.stats.requests
    assert_exact(db, app, [e1, e2])


async def candle_requests_alone(opened, tmp_path, exp) -> int:
    """Candle requests of one job alone for NIFTY ``exp``, one month (fresh app and file)."""
    alone = make_app()
    db0 = opened.db(tmp_path, "alone.sqlite3")
    c0 = opened.client(alone)
    await make_collector(db0, c0).run(Selection(["NIFTY"], [exp], months=1))
    return alone.stats.by_endpoint["historical_candle"]


async def test_overlapping_jobs_fetch_each_window_once(opened, tmp_path):
    """Two jobs over the same expiry at once (the window's run and a scheduled one): each
    candle window is asked of the API once; the later job waits for the earlier one's."""
    (exp,) = last_expiries(make_app())
    once = await candle_requests_alone(opened, tmp_path, exp)

    app = make_app()
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client, claim_poll=0.01)
    j1 = await col.start(Selection(["NIFTY"], [exp], months=1))
    j2 = await col.start(Selection(["NIFTY"], [exp], months=1))
    r1, r2 = await asyncio.gather(j1.wait(), j2.wait())
    assert r1.state == r2.state == JobState.COMPLETED, (r1.errors, r2.errors)
    assert app.stats.by_endpoint["historical_candle"] == once
    assert r1.counters.candle_requests + r2.counters.candle_requests == once
    assert_exact(db, app, [exp])
    assert db.execute("SELECT count(*) FROM window_claim")[0][0] == 0
    notes = [m for j in (r1, r2) for _, _, m in db.job_logs(j.job_id) if "not again" in m]
    assert sum("fetched by it, not again" in n for r in (r1, r2) for n in r.notes) == 1
    # the job that planned second left the shared windows to the first, and says so
    assert notes in (
        [f"windows also selected by job {r1.job_id} were fetched by it, not again"],
        [f"windows also selected by job {r2.job_id} were fetched by it, not again"],
    )


async def test_a_paused_job_does_not_hold_back_an_overlapping_one(opened, tmp_path):
    """Job A pauses as its candle phase starts (and may stay paused for hours): job B of the
    same selection does not wait for A's windows. Resumed, A checks each window again and
    fetches only what B did not store: at most the windows in flight at the pause twice."""
    (exp,) = last_expiries(make_app())
    once = await candle_requests_alone(opened, tmp_path, exp)
    app = make_app()
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client, claim_poll=0.01, concurrency=2)
    sel = Selection(["NIFTY"], [exp], months=1)
    jobs: list = []
    paused = asyncio.Event()

    def on_progress(p: Progress) -> None:
        if p.phase == Phase.CANDLES and jobs and not paused.is_set():
            jobs[0].pause()
            paused.set()

    jobs.append(await col.start(sel, on_progress=on_progress))
    await paused.wait()
    b = await col.start(sel)
    rb = await asyncio.wait_for(b.wait(), 30)
    assert rb.state == JobState.COMPLETED and rb.job_id != jobs[0].id
    jobs[0].resume()
    ra = await jobs[0].wait()
    assert ra.state == JobState.COMPLETED, ra.errors
    assert app.stats.by_endpoint["historical_candle"] <= once + 2
    assert rb.counters.candle_requests >= once - 2
    assert_exact(db, app, [exp])
    assert db.execute("SELECT count(*) FROM window_claim")[0][0] == 0


async def test_estimate_leaves_out_windows_another_job_is_fetching(opened, tmp_path):
    app = make_app()
    (exp,) = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    col = make_collector(db, client)
    sel = Selection(["NIFTY"], [exp], months=1)
    assert (await col.run(sel)).state == JobState.COMPLETED
    with db.transaction() as c:  # the contract lists stay known, the candles are to fetch
        c.execute("DELETE FROM fetch_window")
    before = await col.estimate(sel)
    other = db.create_job("collect", {})
    db.update_job(other, status="running", pid=os.getpid(), heartbeat_at=db.now_text())
    cid = db.contracts_for(NIFTY, exp)[0].id
    f0, t0 = target_range(exp, 1)
    assert db.claim_windows(other, [(cid, 1, f0, t0)]) == {}
    est = await col.estimate(sel)
    assert (est.windows, est.requests) == (before.windows - 1, before.requests - 1)
    assert f"1 more window(s) of this selection are being fetched by job {other} now" in " ".join(
        est.notes
    )
    db.update_job(other, status="cancelled")  # an ended job holds nothing
    assert (await col.estimate(sel)).windows == before.windows


async def test_an_expiry_without_the_chosen_contract_type_is_a_note(opened, tmp_path):
    app = make_app()
    weekly = next(e for e in reversed(app.market.expiries(NIFTY))
                  if not app.market.future_contracts(NIFTY, e))  # fmt: skip
    db = opened.db(tmp_path)
    client = opened.client(app)
    r = await make_collector(db, client).run(
        Selection(["NIFTY"], [weekly], months=1, contract_types=["FUT"])
    )
    assert r.state == JobState.COMPLETED and r.counters.windows_planned == 0
    assert r.notes == (f"NIFTY {weekly}: no FUT contract listed",)
    assert [m for _, lvl, m in db.job_logs(r.job_id) if lvl == "info"][:1] == list(r.notes)


class RowsClient:
    """A client offering ``get_candle_rows`` over the simulator's market, with a span cap;
    ``corrupt`` keys answer once with a complete body whose first candle has an impossible
    time of day (read by the decoder, refused by SQLite's unixepoch)."""

    def __init__(self, inner, app, cap: int, corrupt: set[str] = frozenset()) -> None:
        self.inner, self.app, self.cap, self.corrupt = inner, app, cap, set(corrupt)
        self.row_requests = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get_candle_rows(self, key, interval, f, t):
        import json

        from expirytrack_desktop.upstox.candles import decode_candles
        from expirytrack_desktop.upstox.errors import InvalidDateRangeError

        self.row_requests += 1
        if (t - f).days + 1 > self.cap:
            raise InvalidDateRangeError("HTTP 400 UDAPI1148", code="UDAPI1148", status=400)
        rows = self.app.market.candle_rows(key, interval, f, t)
        if key in self.corrupt and rows:
            self.corrupt.discard(key)
            rows[0] = [rows[0][0][:14] + "75" + rows[0][0][16:], *rows[0][1:]]
        return decode_candles(json.dumps({"status": "success", "data": {"candles": rows}}))


async def test_row_fast_path_is_exact_learns_spans_and_fails_unreadable_answers(opened, tmp_path):
    app = make_app()
    exps = last_expiries(app)
    db = opened.db(tmp_path)
    client = opened.client(app)
    victim = app.market.future_contracts(NIFTY, exps[0])[0]["instrument_key"]  # trades daily
    fast = RowsClient(client, app, cap=20, corrupt={victim})
    r = await make_collector(db, fast).run(Selection(["NIFTY"], exps, months=1))
    assert r.reason == StopReason.FAILED_ITEMS
    assert fast.row_requests > 0 and r.counters.spans_rejected >= 1
    assert not fast.corrupt  # the bad answer was served
    failed = db.failed_windows(r.job_id)
    assert {key for _, key in failed} == {victim}
    assert all("unreadable candles: candle 0 " in w.error for w, _ in failed)
    assert db.span_caps()["1minute"] <= 20
    res2 = await (await make_collector(db, fast).retry_failed(r.job_id)).wait()
    assert res2.state == JobState.COMPLETED, res2.errors
    assert_exact(db, app, exps)
    windows = db.windows_for([c.id for c in db.contracts_for(NIFTY, exps[0])], "1minute")
    for ws in windows.values():
        for w in ws:
            n = sum(1 for _ in db.execute(
                "SELECT 1 FROM candle WHERE contract_id = ? AND ts >= strftime('%s', ?) - 19800 "
                "AND ts < strftime('%s', ?, '+1 day') - 19800",
                (w.contract_id, w.from_date.isoformat(), w.to_date.isoformat()),
            ))  # fmt: skip
            assert w.candles == n and w.state == ("fetched" if n else "empty")


class CandleLog:
    """Wraps a client and records every candle request (the parsed path only)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[tuple[str, date, date]] = []

    def __getattr__(self, name):
        if name == "get_candle_rows":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def get_candles(self, key, interval, f, t):
        self.calls.append((key, f, t))
        return await self.inner.get_candles(key, interval, f, t)


class RowsCandleLog(CandleLog):
    """The same, offering decoded answers (the engine's fast path)."""

    async def get_candle_rows(self, key, interval, f, t):
        self.calls.append((key, f, t))
        return await self.inner.get_candle_rows(key, interval, f, t)


@pytest.mark.parametrize("wrap", [RowsCandleLog, CandleLog], ids=["rows-path", "parsed-path"])
async def test_subwindows_are_committed_as_they_arrive(opened, tmp_path, wrap):
    """First run, span cap not learned yet: the 3-month window is fetched in 30-day requests.
    The token expires after the first accepted one: it is kept, and the rerun does not ask
    for it again."""
    app = make_app(span_cap={"1minute": 30})
    (exp,) = last_expiries(app)
    db = opened.db(tmp_path)
    log1 = wrap(opened.client(app))
    app.expire_tokens_after(5)  # expiries, 2 contract lists, the rejected 93 days, 30 days
    sel = Selection(["NIFTY"], [exp], months=3)
    first = await make_collector(db, log1, concurrency=1).run(sel)
    assert first.reason == StopReason.NEEDS_LOGIN
    f, t = target_range(exp, 3)
    assert log1.calls[0][1:] == (f, t) and (t - f).days + 1 > 30  # rejected: cap unknown
    key, f1, t1 = log1.calls[1]
    assert (f1, t1) == (f, f + timedelta(days=29))
    (cid,) = [c.id for c in db.contracts_for(NIFTY, exp) if c.expired_key == key]
    (w,) = db.windows_for([cid], "1minute")[cid]
    want = ground_truth_rows(app.market, key, "1minute", f1, t1)
    assert want and (w.from_date, w.to_date, w.state, w.candles) == (f1, t1, "fetched", len(want))
    assert db.candle_rows(key) == want
    assert db.failed_windows() == []

    log2 = wrap(opened.client(app, token=app.issue_token()))
    second = await make_collector(db, log2, concurrency=1).run(sel)
    assert second.state == JobState.COMPLETED
    assert second.counters.windows_refetched == 0
    assert all(c[0] != key or c[1] > t1 for c in log2.calls)  # nothing of it asked again
    assert (key, t1 + timedelta(days=1), t1 + timedelta(days=30)) in log2.calls
    assert_exact(db, app, [exp], months=3)
