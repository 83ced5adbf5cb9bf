"""Sliding-window limiter: spec parsing, exact windows under a fake clock, concurrency."""

from __future__ import annotations

import asyncio
import bisect
from contextlib import closing

import pytest

from expirytrack_desktop.upstox.factory import process_limiter
from expirytrack_desktop.upstox.ledger import MemoryLedger, SqliteLedger
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec


class FakeClock:
    """Time moves only when someone sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds
        await asyncio.sleep(0)


def max_in_any_window(times: list[float], span: float) -> int:
    """Largest number of sends in any half-open window [t, t + span)."""
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, t + span) - i for i, t in enumerate(times)),
        default=0,
    )


# ---- spec ------------------------------------------------------------------------------------


def test_parse_default_spec():
    spec = RateLimitSpec.parse("50/1,500/60,2000/1800")
    assert spec.windows == ((50, 1.0), (500, 60.0), (2000, 1800.0))
    assert str(spec) == "50/1,500/60,2000/1800"


def test_parse_sorts_and_accepts_spaces_and_fractions():
    assert RateLimitSpec.parse(" 1000/1800 , 25/0.5").windows == ((25, 0.5), (1000, 1800.0))
    edges = RateLimitSpec.parse("100000/0.1,1/86400").windows
    assert edges == ((100000, 0.1), (1, 86400.0))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("50", "requests/seconds"),
        ("50/1/2", "requests/seconds"),
        ("50/1,", "requests/seconds"),
        ("abc/1", "integer"),
        ("50/x", "integer"),
        ("2.5/1", "integer"),
        ("0/1", "between 1 and 100,000"),
        ("-5/1", "between 1 and 100,000"),
        ("999999999999/1", "between 1 and 100,000"),  # no limit at all
        ("5/0", "from 0.1 to 86400 seconds"),
        ("5/-1", "from 0.1 to 86400 seconds"),
        ("5/nan", "from 0.1 to 86400 seconds"),
        ("5/inf", "from 0.1 to 86400 seconds"),
        ("50/1e-9", "from 0.1 to 86400 seconds"),  # throttling off
        ("1/86400000000", "from 0.1 to 86400 seconds"),  # waits for ever
        ("1/1,2/2,3/3,4/4,5/5,6/6,7/7,8/8,9/9", "at most 8"),
        ("50/1,100/1", "twice"),
        ("50/60,10/60.0", "twice"),
    ],
)
def test_parse_rejects_malformed(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        RateLimitSpec.parse(text)
    assert "\n" not in str(info.value)


# ---- limiter ---------------------------------------------------------------------------------


async def test_never_exceeds_any_window_sequential():
    clock = FakeClock()
    spec = RateLimitSpec.parse("5/1,12/10,20/60")
    limiter = RateLimiter(spec, clock=clock, sleep=clock.sleep, margin=0.1)
    sent = []
    for _ in range(100):
        (await limiter.acquire()).release()
        sent.append(clock())
    assert max_in_any_window(sent, 1) == 5
    assert max_in_any_window(sent, 10) == 12
    assert max_in_any_window(sent, 60) == 20
    # ... and the margin is honoured: no 21 sends within 60.1 s either.
    assert max_in_any_window(sent, 60.1) <= 20
    # It does not wait needlessly: the 21st send goes out as soon as the 1st leaves the
    # (60 + 0.1) s window, and the 6th as soon as the 1st leaves the (1 + 0.1) s window.
    assert sent[20] - sent[0] == pytest.approx(60.1, abs=1e-3)
    assert sent[5] - sent[0] == pytest.approx(1.1, abs=1e-3)


async def test_concurrent_acquirers_are_fair_and_within_limits():
    clock = FakeClock()
    limiter = RateLimiter(RateLimitSpec.parse("3/1,10/5"), clock=clock, sleep=clock.sleep)
    log: list[tuple[int, float]] = []

    async def worker(n: int) -> None:
        for _ in range(10):
            (await limiter.acquire()).release()
            log.append((n, clock()))

    await asyncio.gather(*(worker(n) for n in range(8)))
    times = [t for _, t in log]
    assert len(times) == 80
    assert max_in_any_window(times, 1.1) <= 3
    assert max_in_any_window(times, 5.1) <= 10
    per_worker = {n: sum(1 for w, _ in log if w == n) for n in range(8)}
    assert set(per_worker.values()) == {10}
    # Fair queue: once everyone waits, grants rotate through all 8 workers.
    assert len({w for w, _ in log[10:18]}) == 8


async def test_usage_reports_nominal_windows():
    clock = FakeClock()
    limiter = RateLimiter(RateLimitSpec.parse("50/1,500/60"), clock=clock, sleep=clock.sleep)
    for _ in range(7):
        (await limiter.acquire()).release()
    clock.now += 2
    (await limiter.acquire()).release()
    assert limiter.usage() == [(1.0, 1, 50), (60.0, 8, 500)]


async def test_two_limiters_sharing_a_sqlite_ledger_act_as_one(tmp_path):
    """Two processes (here: two limiters on two connections) never jointly exceed a window."""
    clock = FakeClock()
    spec = RateLimitSpec.parse("4/1,10/30")
    a = RateLimiter(spec, clock=clock, sleep=clock.sleep, ledger=SqliteLedger(tmp_path / "l.db"))
    b = RateLimiter(spec, clock=clock, sleep=clock.sleep, ledger=SqliteLedger(tmp_path / "l.db"))
    sent: list[float] = []

    async def run(limiter: RateLimiter) -> None:
        for _ in range(15):
            (await limiter.acquire()).release()
            sent.append(clock())

    await asyncio.gather(run(a), run(b))
    assert len(sent) == 30
    assert max_in_any_window(sent, 1.1) <= 4
    assert max_in_any_window(sent, 30.1) <= 10
    assert a.acquired == b.acquired == 15


async def test_restart_honours_what_was_spent(tmp_path):
    clock = FakeClock()
    spec = RateLimitSpec.parse("50/1,500/60,2000/1800")
    with closing(SqliteLedger(tmp_path / "b")) as ledger:
        first = RateLimiter(spec, clock=clock, sleep=clock.sleep, ledger=ledger)
        for _ in range(500):
            (await first.acquire()).release()
        started = clock()
    # the process "crashed"; a new one opens the same ledger
    with closing(SqliteLedger(tmp_path / "b")) as ledger:
        second = RateLimiter(spec, clock=clock, sleep=clock.sleep, ledger=ledger)
        assert second.usage()[1] == (60.0, 500, 500)
        (await second.acquire()).release()
    # The new process had to wait for the minute window to free a slot.
    assert clock() - started > 45


async def test_in_flight_permits_hold_their_slot_until_released():
    clock = FakeClock()
    limiter = RateLimiter(RateLimitSpec.parse("1/1"), clock=clock, sleep=clock.sleep, margin=0)
    with await limiter.acquire():
        pass
    clock.now += 5
    first = await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    for _ in range(200):  # 200 polls of 20 ms: 4 simulated seconds
        await asyncio.sleep(0)
    assert not waiter.done()  # the first request may still arrive at the server
    assert clock.now - 1_700_000_005.0 > 3.0
    first.release()
    released_at = clock.now
    second = await waiter
    # free one window after the answer (no margin here), noticed within one poll
    assert released_at + 1.0 <= clock.now <= released_at + 1.0 + limiter.poll + 1e-6
    second.release()
    first.release()  # idempotent
    assert limiter.usage() == [(1.0, 1, 1)]


def test_negative_margin_rejected():
    with pytest.raises(ValueError):
        RateLimiter(RateLimitSpec.parse("1/1"), margin=-1)


def test_process_limiter_is_shared_and_replaced_on_new_spec(tmp_path):
    one = process_limiter("50/1,500/60,2000/1800")
    assert process_limiter("50/1, 500/60, 2000/1800") is one
    other = process_limiter("25/1,250/60,1000/1800")
    assert other is not one
    assert other.spec.windows[0] == (25, 1.0)
    assert process_limiter("25/1,250/60,1000/1800") is other
    with_db = process_limiter("25/1,250/60,1000/1800", tmp_path / "rl.sqlite")
    assert isinstance(with_db.ledger, SqliteLedger)
    assert process_limiter("25/1,250/60,1000/1800", tmp_path / "rl.sqlite") is with_db
    with pytest.raises(ValueError):
        process_limiter("nonsense")


def test_memory_ledger_is_default():
    assert isinstance(RateLimiter(RateLimitSpec.parse("1/1")).ledger, MemoryLedger)


async def test_waiting_until_says_when_the_budget_frees_while_a_send_is_held_back():
    clock = FakeClock()
    seen: list[float | None] = []

    async def sleep(seconds: float) -> None:
        seen.append(limiter.waiting_until)  # what a progress reporter reads meanwhile
        await clock.sleep(seconds)

    limiter = RateLimiter(RateLimitSpec.parse("2/60"), clock=clock, sleep=sleep, margin=0)
    t0 = clock.now
    for _ in range(2):
        (await limiter.acquire()).release()
    assert limiter.waiting_until is None and seen == []
    (await limiter.acquire()).release()
    assert seen and seen[0] == pytest.approx(t0 + 60, abs=0.01)
    assert limiter.waiting_until is None  # sent: no longer waiting
