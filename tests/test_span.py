"""Span learning: cover a window with accepted sub-requests, learn the cap, lose nothing."""

from __future__ import annotations

import asyncio
import math
from datetime import date, datetime, time, timedelta

import pytest

from expirytrack_desktop.timeutil import IST, ist_date
from expirytrack_desktop.upstox.errors import BadInputError, InvalidDateRangeError, ServerError
from expirytrack_desktop.upstox.span import SpanPolicy, fetch_window


def minute_candles(first: date, last: date) -> list[tuple]:
    """Three candles per weekday (09:15, 12:00, 15:29) between two dates."""
    out = []
    d = first
    while d <= last:
        if d.weekday() < 5:
            for hh, mm in ((9, 15), (12, 0), (15, 29)):
                ts = int(datetime.combine(d, time(hh, mm), IST).timestamp())
                out.append((ts, 1.0, 2.0, 0.5, 1.5, 10, 0))
        d += timedelta(days=1)
    return out


class FakeServer:
    """get_candles that rejects spans wider than ``cap`` days (inclusive), like UDAPI1148."""

    def __init__(self, cap: int | None, candles: list[tuple], *, overlap: bool = False) -> None:
        self.cap = cap
        self.candles = candles
        self.calls: list[tuple[date, date]] = []
        self.overlap = overlap  # answer one extra day on each side, as a sloppy server might

    async def get_candles(self, key, interval, from_date, to_date):
        await asyncio.sleep(0)
        self.calls.append((from_date, to_date))
        if self.cap is not None and (to_date - from_date).days + 1 > self.cap:
            raise InvalidDateRangeError("Invalid date range", code="UDAPI1148", status=400)
        lo = from_date - timedelta(days=1) if self.overlap else from_date
        hi = to_date + timedelta(days=1) if self.overlap else to_date
        rows = [c for c in self.candles if lo <= ist_date(c[0]) <= hi]
        return sorted(rows, reverse=True)  # newest first, like Upstox


START = date(2025, 1, 6)


@pytest.mark.parametrize("days", [1, 29, 30, 31, 60, 95, 120])
async def test_cap_30_unknown_costs_at_most_one_rejection(days):
    end = START + timedelta(days=days - 1)
    truth = minute_candles(START, end)
    server = FakeServer(30, truth)
    learned = []
    policy = SpanPolicy(on_learn=lambda i, c: learned.append((i, c)))
    got = await fetch_window(server, "NSE_FO|1|01-01-2025", "1minute", START, end, policy)
    assert got.candles == sorted(truth)
    assert got.requests == len(server.calls) <= math.ceil(days / 30) + 1
    # sub-windows are day-disjoint, contiguous and cover the window exactly
    assert got.subwindows[0][0] == START and got.subwindows[-1][1] == end
    for (_, a_end), (b_start, _) in zip(got.subwindows, got.subwindows[1:], strict=False):
        assert b_start == a_end + timedelta(days=1)
    assert all((e - s).days + 1 <= 30 for s, e in got.subwindows)
    if days > 30:
        assert learned == [("1minute", 30)] and got.rejected == 1
        assert policy.cap_days("1minute") == 30
    else:
        assert learned == [] and got.rejected == 0


async def test_no_cap_uses_wide_spans():
    end = START + timedelta(days=94)
    server = FakeServer(None, minute_candles(START, end))
    got = await fetch_window(server, "K", "1minute", START, end, SpanPolicy())
    assert got.requests == 2  # 93 + 2 days
    assert got.subwindows == [
        (START, START + timedelta(days=92)),
        (START + timedelta(days=93), end),
    ]


@pytest.mark.parametrize("expiry", [date(2025, 5, 1), date(2025, 5, 29), date(2025, 7, 31)])
async def test_default_history_window_is_one_request(expiry):
    """3 months before an expiry is 90-93 inclusive days: one request where the API allows."""
    from expirytrack_desktop.collect.plan import target_range

    f, t = target_range(expiry, 3)
    server = FakeServer(None, minute_candles(f, t))
    got = await fetch_window(server, "K", "1minute", f, t, SpanPolicy())
    assert got.requests == 1 and got.subwindows == [(f, t)]
    assert got.candles == sorted(minute_candles(f, t))


async def test_small_cap_bisects_after_the_30_day_jump():
    end = START + timedelta(days=40)
    truth = minute_candles(START, end)
    server = FakeServer(7, truth)
    learned = []
    policy = SpanPolicy(on_learn=lambda i, c: learned.append(c))
    got = await fetch_window(server, "K", "5minute", START, end, policy)
    assert got.candles == sorted(truth)
    assert learned == [30, 15, 7]
    assert policy.cap_days("5minute") == 7
    assert policy.cap_days("1minute") == 93  # other intervals are untouched


async def test_wider_intervals_fall_back_to_a_quarter_first():
    end = START + timedelta(days=300)
    truth = minute_candles(START, end)
    server = FakeServer(90, truth)
    learned = []
    policy = SpanPolicy(on_learn=lambda i, c: learned.append((i, c)))
    got = await fetch_window(server, "K", "day", START, end, policy)
    assert learned == [("day", 90)]
    assert got.candles == sorted(truth)
    assert got.requests == math.ceil(301 / 90) + 1


async def test_initial_caps_are_used_and_no_relearning():
    end = START + timedelta(days=59)
    server = FakeServer(30, minute_candles(START, end))
    policy = SpanPolicy(initial_caps={"1minute": 30}, on_learn=lambda *a: pytest.fail("relearned"))
    got = await fetch_window(server, "K", "1minute", START, end, policy)
    assert got.requests == 2 and got.rejected == 0


async def test_overlapping_answers_are_deduplicated_and_clipped():
    end = START + timedelta(days=44)
    truth = minute_candles(START - timedelta(days=3), end + timedelta(days=3))
    server = FakeServer(30, truth, overlap=True)
    got = await fetch_window(server, "K", "1minute", START, end, SpanPolicy())
    inside = sorted(c for c in truth if START <= ist_date(c[0]) <= end)
    assert got.candles == inside
    assert len({c[0] for c in got.candles}) == len(got.candles)


async def test_concurrent_fetches_share_one_rejection():
    end = START + timedelta(days=94)
    truth = minute_candles(START, end)
    server = FakeServer(30, truth)
    learned = []
    policy = SpanPolicy(on_learn=lambda i, c: learned.append(c))
    results = await asyncio.gather(
        *(fetch_window(server, f"K{n}", "1minute", START, end, policy) for n in range(6))
    )
    assert learned == [30]
    assert sum(r.rejected for r in results) == 1
    assert all(r.candles == sorted(truth) for r in results)
    assert len(server.calls) == 6 * 4 + 1


async def test_one_day_rejection_and_other_errors_propagate():
    server = FakeServer(0, [])
    with pytest.raises(InvalidDateRangeError):
        await fetch_window(server, "K", "1minute", START, START + timedelta(days=3), SpanPolicy())

    class Broken:
        async def get_candles(self, *a):
            raise BadInputError("unknown key", code="UDAPI100011", status=400)

    with pytest.raises(BadInputError):
        await fetch_window(Broken(), "K", "1minute", START, START, SpanPolicy())
    with pytest.raises(ValueError):
        await fetch_window(Broken(), "K", "1minute", START, START - timedelta(days=1), SpanPolicy())


class RowsServer(FakeServer):
    """The same server, answering decoded rows too; ``fail_after`` accepted requests, 500s."""

    def __init__(self, cap, candles, *, fail_after: int | None = None) -> None:
        super().__init__(cap, candles)
        self.fail_after = fail_after
        self.accepted = 0

    async def get_candle_rows(self, key, interval, from_date, to_date):
        import json

        from expirytrack_desktop.timeutil import ist_iso
        from expirytrack_desktop.upstox.candles import decode_candles
        from expirytrack_desktop.upstox.errors import ServerError

        if self.fail_after is not None and self.accepted >= self.fail_after:
            self.calls.append((from_date, to_date))
            raise ServerError("HTTP 500 after 5 attempts", code="UDAPI100500", status=500)
        rows = await self.get_candles(key, interval, from_date, to_date)
        self.accepted += 1
        api = [[ist_iso(r[0]), *r[1:]] for r in rows]
        return decode_candles(json.dumps({"status": "success", "data": {"candles": api}}))


async def test_raw_answers_one_per_accepted_subwindow():
    end = START + timedelta(days=64)
    server = RowsServer(30, minute_candles(START, end))
    got = await fetch_window(server, "K", "1minute", START, end, SpanPolicy(), raw=True)
    assert got.candles == [] and len(got.batches) == len(got.subwindows) == 3
    assert (got.requests, got.rejected) == (4, 1)
    assert all(b.iso and len(b) > 0 for b in got.batches)


async def test_subwindows_are_handed_over_as_they_arrive():
    end = START + timedelta(days=94)
    server = RowsServer(30, minute_candles(START, end), fail_after=2)
    seen = []

    async def on_subwindow(sub):
        seen.append(sub)

    with pytest.raises(ServerError):
        await fetch_window(
            server, "K", "1minute", START, end, SpanPolicy(), raw=True, on_subwindow=on_subwindow
        )
    # two accepted sub-windows were handed over before the third request failed
    assert [(s.from_date, s.to_date, s.requests, s.rejected) for s in seen] == [
        (START, START + timedelta(days=29), 2, 1),
        (START + timedelta(days=30), START + timedelta(days=59), 1, 0),
    ]
    assert all(s.rows is not None and s.candles == [] for s in seen)


async def test_handed_over_candles_are_clipped_and_not_kept():
    end = START + timedelta(days=44)
    truth = minute_candles(START - timedelta(days=3), end + timedelta(days=3))
    server = FakeServer(30, truth, overlap=True)
    seen = []

    async def on_subwindow(sub):
        seen.append(sub)

    got = await fetch_window(
        server, "K", "1minute", START, end, SpanPolicy(), on_subwindow=on_subwindow
    )
    assert got.candles == [] and got.subwindows == [(s.from_date, s.to_date) for s in seen]
    inside = sorted(c for c in truth if START <= ist_date(c[0]) <= end)
    assert [c for s in seen for c in s.candles] == inside
    assert sum(s.requests for s in seen) == got.requests == 3


def test_defaults():
    policy = SpanPolicy(initial_caps={"3minute": 0, "15minute": 45})
    assert policy.cap_days("1minute") == 93  # the longest 3-month history window
    assert policy.cap_days("3minute") == 93  # nonsense persisted values are ignored
    assert policy.cap_days("15minute") == 45
    assert policy.cap_days("day") == 365


# ---- against the built-in simulator (in-process transport) ----------------------------------


async def test_simulator_unknown_cap_with_faults_fetches_everything():
    sandbox = pytest.importorskip("expirytrack_desktop.sandbox")
    from expirytrack_desktop.timeutil import parse_ts
    from expirytrack_desktop.upstox.client import UpstoxClient
    from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

    market = sandbox.Market(seed=3)
    ukey = market.underlying_keys()[0]
    expiry = next(e for e in reversed(market.expiries(ukey)) if market.future_contracts(ukey, e))
    key = market.future_contracts(ukey, expiry)[0]["instrument_key"]
    rows = market.candles(key)
    truth = [(parse_ts(r[0]), *map(float, r[1:5]), int(r[5]), int(r[6])) for r in rows]
    faults = sandbox.FaultConfig(http_500=0.15, truncated_json=0.15, drop_connection=0.1, seed=5)
    app = sandbox.SimulatorApp(
        market, rate_limit=None, span_cap_days={"1minute": 30}, faults=faults
    )

    async def no_sleep(_: float) -> None:
        return None

    limiter = RateLimiter(RateLimitSpec.parse("1000/1"))
    client = UpstoxClient(
        "http://sim",
        access_token=sandbox.DEMO_ACCESS_TOKEN,
        limiter=limiter,
        transport=app.transport(),
        max_attempts=8,
        sleep=no_sleep,
    )
    first, last = ist_date(truth[0][0]), ist_date(truth[-1][0])
    async with client:
        got = await fetch_window(client, key, "1minute", first, last, SpanPolicy())
    assert got.candles == truth
    assert got.rejected == 1
    assert got.requests <= math.ceil(((last - first).days + 1) / 30) + 1
    assert app.stats.faults_injected > 0 and client.retries > 0
