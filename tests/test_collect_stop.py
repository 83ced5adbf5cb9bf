"""When a run stops, answers already on their way are committed (nothing answered is asked
again after a resume), and every failure message names its own window."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from expirytrack_desktop.collect import JobState, Selection, StopReason
from expirytrack_desktop.sandbox import FaultConfig, Market, SimulatorApp
from expirytrack_desktop.upstox.errors import ServerError
from tests.collect_helpers import NIFTY, TODAY, make_client, make_collector, make_db


class LoggingApp(SimulatorApp):
    """The simulator, plus the path and status of every candle request it answered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answers: list[tuple[str, int]] = []

    async def handle(self, method, path, query, headers, body):
        resp = await super().handle(method, path, query, headers, body)
        if "/historical-candle/" in path:
            self.answers.append((path, resp.status))
        return resp


def make_app() -> LoggingApp:
    market = Market(seed=11, today=TODAY, underlyings=("NIFTY",), strikes_per_side=4)
    faults = FaultConfig(latency_ms=(2, 25), seed=3)  # answers arrive out of order
    return LoggingApp(market, rate_limit=None, faults=faults)


@pytest.mark.parametrize("after", [17, 29, 41, 53, 66])
async def test_answers_in_flight_at_a_token_expiry_are_committed(tmp_path, after):
    """Tokens expire after ``after`` requests with 8 requests in flight: the answers already
    given (200) are stored, so the resumed run asks for none of those windows again."""
    app = make_app()
    exps = app.market.expiries(NIFTY)[-2:]
    sel = Selection(["NIFTY"], exps, months=4)
    db = make_db(tmp_path)
    client = make_client(app)
    try:
        app.expire_tokens_after(after)
        first = await make_collector(db, client, concurrency=8).run(sel)
        assert (first.state, first.reason) == (JobState.NEEDS_LOGIN, StopReason.NEEDS_LOGIN)
        answered_first = {p for p, status in app.answers if status == 200}
        assert answered_first  # the run got some answers before the expiry
        client.set_access_token(app.issue_token())
        second = await make_collector(db, client, concurrency=8).run(sel)
        assert second.state == JobState.COMPLETED
        ok = Counter(p for p, status in app.answers if status == 200)
        again = sorted(p for p, n in ok.items() if n > 1)
        assert again == [], f"windows answered 200 twice: {again}"
        assert second.counters.windows_refetched == 0
    finally:
        await client.aclose()
        db.close()


async def test_answers_in_flight_at_a_cancel_are_committed(tmp_path):
    app = make_app()
    exps = app.market.expiries(NIFTY)[-2:]
    sel = Selection(["NIFTY"], exps, months=4)
    db = make_db(tmp_path)
    client = make_client(app)
    try:
        col = make_collector(db, client, concurrency=8)
        job = None

        def on_progress(p) -> None:
            if p.items_done >= 12 and job is not None:
                job.cancel()

        job = await col.start(sel, on_progress=on_progress)
        r = await job.wait()
        assert r.state == JobState.CANCELLED
        answered_first = Counter(p for p, status in app.answers if status == 200)
        assert answered_first and max(answered_first.values()) == 1
        r2 = await col.run(sel)
        assert r2.state == JobState.COMPLETED
        ok = Counter(p for p, status in app.answers if status == 200)
        assert sorted(p for p, n in ok.items() if n > 1) == []
    finally:
        await client.aclose()
        db.close()


class FailingClient:
    """Wraps a client: candle requests of ``bad`` keys fail after a delay that depends on the
    key, so several windows are in flight and fail in another order than they started."""

    def __init__(self, inner, bad: dict[str, float]) -> None:
        self.inner, self.bad = inner, bad

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def get_candle_rows(self, key, interval, f, t):
        if key in self.bad:
            await asyncio.sleep(self.bad[key])
            raise ServerError(f"HTTP 500 for {key}", code="UDAPI100500", status=500)
        await asyncio.sleep(0.001)
        return await self.inner.get_candle_rows(key, interval, f, t)


async def test_each_failure_message_names_its_own_window(tmp_path):
    app = make_app()
    exps = app.market.expiries(NIFTY)[-2:]
    db = make_db(tmp_path)
    inner = make_client(app)
    try:
        warm = make_collector(db, inner)
        await warm.check_selection(Selection(["NIFTY"], exps, months=1))
        for e in exps:  # store the contracts, so the failing keys are known
            opts = await inner.get_option_contracts(NIFTY, e)
            futs = await inner.get_future_contracts(NIFTY, e)
            await db.run(db.upsert_expiries, NIFTY, app.market.expiries(NIFTY))
            await db.run(db.store_contracts, NIFTY, e, opts + futs, mark_fetched=True)
        rows = db.execute(
            "SELECT c.expired_key, c.openalgo_symbol, c.trading_symbol FROM contract c"
            " ORDER BY c.id"
        )
        victims = rows[:: max(1, len(rows) // 6)][:6]
        # the first to start fails last
        bad = {key: 0.002 + 0.01 * (len(victims) - i) for i, (key, _, _) in enumerate(victims)}
        col = make_collector(db, FailingClient(inner, bad), concurrency=8)
        r = await col.run(Selection(["NIFTY"], exps, months=1))
        assert r.reason == StopReason.FAILED_ITEMS
        label = {key: sym or key for key, sym, _ in victims}
        failures = [e for e in r.errors if "HTTP 500 for" in e]
        assert len(failures) == len(victims)
        for text in failures:
            key = text.rsplit("HTTP 500 for ", 1)[1]
            assert text.startswith(label[key] + " "), text
    finally:
        await inner.aclose()
        db.close()
