"""Suspend/resume and clock corrections: the limiter's clock jumps (injected clocks) must
neither let a burst through a rate window nor leave a request waiting as long as the jump."""

from __future__ import annotations

from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec


class FakeTime:
    """The limiter's clock (settable, e.g. a jump) and the "true" time that really passed,
    which the server's windows count in; sleeping advances both."""

    def __init__(self, start: float) -> None:
        self.clock_at = start
        self.true = 0.0
        self.limiter: RateLimiter | None = None
        self.until_ahead: list[float] = []  # limiter.waiting_until - clock() at each sleep

    def clock(self) -> float:
        return self.clock_at

    async def sleep(self, seconds: float) -> None:
        if self.limiter is not None and self.limiter.waiting_until is not None:
            self.until_ahead.append(self.limiter.waiting_until - self.clock_at)
        self.clock_at += seconds
        self.true += seconds

    def jump(self, seconds: float, *, real: bool) -> None:
        """The clock moves by ``seconds``; ``real``: that time passed (a suspend)."""
        self.clock_at += seconds
        if real:
            self.true += seconds


def worst_window(sends: list[float], span: float) -> int:
    """The most sends in any ``span`` seconds of true time."""
    return max(sum(1 for t in sends if s <= t < s + span) for s in sends)


async def test_clock_set_back_an_hour_neither_hangs_nor_lets_a_burst_through():
    t = FakeTime(1_000_000.0)
    limiter = RateLimiter(RateLimitSpec.parse("5/1,20/60"), clock=t.clock, sleep=t.sleep)
    sends: list[float] = []
    for _ in range(20):
        (await limiter.acquire()).release()
        sends.append(t.true)
    t.jump(-3600, real=False)  # NTP correction: no time passed
    t.limiter = limiter
    for _ in range(20):
        (await limiter.acquire()).release()
        sends.append(t.true)
    assert worst_window(sends, 60.0) <= 20 and worst_window(sends, 1.0) <= 5
    # "waiting for API budget until" (the window's status) is on the clock it reads
    assert t.until_ahead and all(0 <= a <= 61 for a in t.until_ahead)
    # the 21st send waited for the minute window only, not for the hour of the jump
    assert sends[20] - sends[0] <= 60.0 + 2 * limiter.margin + 1.0


async def test_suspend_jump_with_requests_in_flight_frees_them_and_keeps_the_windows():
    t = FakeTime(1_000_000.0)
    limiter = RateLimiter(RateLimitSpec.parse("5/1,20/60"), clock=t.clock, sleep=t.sleep)
    held = [await limiter.acquire() for _ in range(5)]  # in flight when the lid closes
    t.jump(8 * 3600, real=True)  # suspended overnight
    sends: list[float] = []
    for _ in range(30):
        (await limiter.acquire()).release()  # no wait for the answers that never came
        sends.append(t.true)
    for permit in held:
        permit.release()  # their (failed) answers come in after the resume
    assert worst_window(sends, 1.0) <= 5 and worst_window(sends, 60.0) <= 20
    assert sends[0] == 8 * 3600  # the first request after the resume went at once
