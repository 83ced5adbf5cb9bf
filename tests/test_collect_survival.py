"""A run that lasts days: it waits through a network outage and a token expiry instead of
stopping, continues by itself, and fetches nothing twice (README "Long runs").

Real parts: the simulator on a loopback port (stopped and started again on the same port),
real SQLite files, the real client. Each test counts the candle answers the server sent per
window and compares the database with an uninterrupted run's."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from expirytrack_desktop.collect import JobState, Selection, StopReason
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from tests.collect_helpers import NIFTY, make_app, make_client, make_collector
from tests.survival_helpers import CandleLog, SwitchableServer, stored, windows_done


async def _no_sleep(_s: float) -> None:
    return None


def _client(opened, base: str, token: str) -> UpstoxClient:
    return opened.add(
        UpstoxClient(
            base,
            access_token=token,
            limiter=RateLimiter(RateLimitSpec.parse("100000/1")),
            timeout=5.0,
            deadline=10.0,
            max_attempts=2,
            sleep=_no_sleep,
        )
    )


async def _reference(opened, tmp_path, sel: Selection, expiry: date) -> dict:
    """What an uninterrupted run stores (its own simulator of the same market)."""
    app = make_app()
    db = opened.db(tmp_path, "reference.sqlite3")
    result = await make_collector(db, opened.add(make_client(app))).run(sel)
    assert result.state == JobState.COMPLETED
    return await db.run(stored, db, NIFTY, expiry)


class Waits:
    """Progress observer: the waits the run reported, and an event per kind."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str | None]] = []
        self.started = {"network": asyncio.Event(), "login": asyncio.Event()}

    def __call__(self, p) -> None:
        if not self.seen or self.seen[-1] != (p.waiting_for, p.waiting):
            self.seen.append((p.waiting_for, p.waiting))
        if p.waiting_for in self.started:
            self.started[p.waiting_for].set()


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.02)


# span_cap: the server takes at most 25 days a request, so windows are fetched in parts and
# the wait can fall between two parts of one window (it then goes on from the first day not
# yet written).
SPAN_CAPS = pytest.mark.parametrize("span_cap", [None, {"1minute": 25}], ids=["whole", "parts"])


@SPAN_CAPS
async def test_network_loss_waits_and_continues_without_refetching(opened, tmp_path, span_cap):
    app = make_app(span_cap=span_cap)
    expiry = app.market.expiries(NIFTY)[-1]
    sel = Selection([NIFTY], [expiry], months=2)
    reference = await _reference(opened, tmp_path, sel, expiry)
    log = CandleLog(app, hold_after=5)
    db_path = tmp_path / "run.sqlite3"
    db = opened.db(tmp_path, "run.sqlite3")
    waits = Waits()
    with SwitchableServer(app) as server:
        token = app.issue_token()
        client = _client(opened, server.base, token)
        collector = make_collector(db, client, network_wait=None, probe_first=0.05, probe_max=0.2)
        job = await collector.start(sel, on_progress=waits)
        # Mid-run: 5 windows answered and stored, the next requests held by the server.
        await _until(lambda: log.holding.is_set() and windows_done(db_path) >= log.total())
        log.cut()
        await asyncio.to_thread(server.down)  # held requests never get their answer
        await waits.started["network"].wait()
        assert not job.done()
        log.release()
        await asyncio.to_thread(server.up)
        result = await job.wait()
    assert (result.state, result.reason) == (JobState.COMPLETED, StopReason.OK), result.errors
    assert result.counters.windows_failed == 0 and result.counters.windows_refetched == 0
    assert log.twice() == []
    assert await db.run(stored, db, NIFTY, expiry) == reference
    if span_cap:  # the windows were fetched in parts
        assert windows_done(db_path) > result.counters.windows_planned
    kinds = [k for k, _ in waits.seen]
    assert "network" in kinds and kinds[-1] is None
    text = next(t for k, t in waits.seen if k == "network")
    assert text is not None and text.startswith("waiting for the network since ")
    logs = [m for _, _, m in await db.run(db.job_logs, job.id, 100)]
    assert any(m.startswith("waiting for the network") for m in logs)
    assert "the API answers again: continuing" in logs


async def test_network_wait_is_bounded(opened, tmp_path):
    """A one-off run gives up after its --network-wait and stops as 'network' (exit 6),
    resumably: the rerun fetches only what is missing."""
    app = make_app()
    expiry = app.market.expiries(NIFTY)[-1]
    sel = Selection([NIFTY], [expiry], months=2)
    log = CandleLog(app, hold_after=3)
    db = opened.db(tmp_path)
    with SwitchableServer(app) as server:
        client = _client(opened, server.base, app.issue_token())
        collector = make_collector(db, client, network_wait=0.3, probe_first=0.05, probe_max=0.1)
        job = await collector.start(sel)
        await _until(log.holding.is_set)
        log.cut()
        await asyncio.to_thread(server.down)
        result = await job.wait()
        assert (result.state, result.reason) == (JobState.FAILED, StopReason.NETWORK)
        assert "--network-wait" in (result.message or "")
        log.release()
        await asyncio.to_thread(server.up)
        again = await collector.run(sel)
    assert again.state == JobState.COMPLETED and again.job_id == result.job_id
    assert again.counters.windows_refetched == 0
    assert log.twice() == []


@SPAN_CAPS
async def test_token_expiry_waits_for_login_and_continues(opened, tmp_path, span_cap):
    app = make_app(span_cap=span_cap)
    expiry = app.market.expiries(NIFTY)[-1]
    sel = Selection([NIFTY], [expiry], months=2)
    reference = await _reference(opened, tmp_path, sel, expiry)
    log = CandleLog(app)
    db = opened.db(tmp_path, "run.sqlite3")
    store: dict[str, str | None] = {"token": app.issue_token()}
    waits = Waits()
    with SwitchableServer(app) as server:
        client = _client(opened, server.base, store["token"] or "")
        collector = make_collector(
            db,
            client,
            token_source=lambda: store["token"],
            token_poll=0.02,
            how_to_login="run `expirytrack login` in another terminal",
        )
        app.expire_tokens_after(12)  # mid-run: the daily 03:30 IST expiry
        job = await collector.start(sel, on_progress=waits)
        await waits.started["login"].wait()
        assert not job.done()
        store["token"] = app.issue_token()  # the user logs in (the token store gets a new one)
        result = await job.wait()
    assert (result.state, result.reason) == (JobState.COMPLETED, StopReason.OK), result.errors
    assert result.counters.windows_failed == 0 and result.counters.windows_refetched == 0
    assert log.twice() == []
    assert await db.run(stored, db, NIFTY, expiry) == reference
    text = next(t for k, t in waits.seen if k == "login")
    assert text is not None and "expirytrack login" in text and "UDAPI100050" in text
    assert waits.seen[-1] == (None, None)


async def test_token_expiry_without_a_token_source_stops_resumably(opened, tmp_path):
    """A scheduled (non-interactive) run: no token source, so it stops as 'needs login'
    (exit 3) and the rerun after login fetches only the rest."""
    app = make_app()
    expiry = app.market.expiries(NIFTY)[-1]
    sel = Selection([NIFTY], [expiry], months=2)
    log = CandleLog(app)
    db = opened.db(tmp_path)
    with SwitchableServer(app) as server:
        client = _client(opened, server.base, app.issue_token())
        collector = make_collector(db, client)
        app.expire_tokens_after(12)
        first = await collector.run(sel)
        assert first.state == JobState.NEEDS_LOGIN
        client.set_access_token(app.issue_token())
        again = await collector.run(sel)
    assert again.state == JobState.COMPLETED and again.counters.windows_refetched == 0
    assert log.twice() == []


async def test_cancel_while_waiting_for_the_network(opened, tmp_path):
    """Ctrl+C / Cancel during a wait ends the run at once as 'cancelled', progress kept."""
    app = make_app()
    expiry = app.market.expiries(NIFTY)[-1]
    log = CandleLog(app, hold_after=3)
    db_path = tmp_path / "t.sqlite3"
    db = opened.db(tmp_path)
    waits = Waits()
    with SwitchableServer(app) as server:
        client = _client(opened, server.base, app.issue_token())
        collector = make_collector(db, client, network_wait=None, probe_first=60, probe_max=60)
        job = await collector.start(Selection([NIFTY], [expiry], months=2), on_progress=waits)
        await _until(lambda: log.holding.is_set() and windows_done(db_path) >= log.total())
        log.cut()
        await asyncio.to_thread(server.down)
        await waits.started["network"].wait()
        job.cancel()
        result = await job.wait()
        log.release()
    assert (result.state, result.reason) == (JobState.CANCELLED, StopReason.CANCELLED)
    assert windows_done(db_path) == log.total() >= 3
    assert (await db.run(db.get_job, job.id)).status == "cancelled"
