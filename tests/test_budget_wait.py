"""A run held back by the rate limits says so and gives an ETA the limits allow: once the
30-minute budget is spent the next request is up to half an hour away, and the recent rate
alone would promise minutes (seen in the 30-minute universe backfill: a silent CLI)."""

from __future__ import annotations

import io
import re

import pytest

from expirytrack_desktop.cli import collect_cmd, exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import JobState, Phase, Progress
from expirytrack_desktop.collect.progress import JobProgress
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, serve
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from tests.collect_helpers import make_app, make_db


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _tracker(tmp_path, limiter: RateLimiter, clock: Clock) -> JobProgress:
    db = make_db(tmp_path)
    p = JobProgress(
        1,
        db,
        clock=clock,
        progress_interval=0.0,
        persist_interval=60.0,
        requests_sent=lambda: 0,
        others_running=lambda: False,
        requests_before=0,
        on_progress=None,
        limiter=limiter,
    )
    p.phase, p.total, p.done = Phase.CANDLES, 4_001, 1
    return p


def test_eta_allows_for_the_budget_wait_and_the_windows_still_to_come(tmp_path):
    clock = Clock(1_000_000.0)
    limiter = RateLimiter(RateLimitSpec.parse("50/1,500/60,2000/1800"), clock=clock)
    p = _tracker(tmp_path, limiter, clock)
    try:
        snap = p.snapshot()  # not waiting: 4,000 items, the last 2,000 a 30-minute window later
        assert snap.budget_until is None
        assert snap.eta_seconds == 1800.0
        limiter.waiting_until = clock.t + 600.0  # the head of the queue sleeps 10 minutes
        snap = p.snapshot()
        assert snap.budget_until == clock.t + 600.0
        assert snap.eta_seconds == 600.0 + 1800.0
        clock.t += 601.0  # the wait is over: nothing said any more
        assert p.snapshot().budget_until is None
    finally:
        p._db.close()


def _progress(until: float | None, done: int = 4, eta: float | None = 4000.0) -> Progress:
    return Progress(1, JobState.RUNNING, Phase.CANDLES, 10, done, 0, 9, 100, 0.0, eta, "", 0,
                    None, budget_until=until)  # fmt: skip


@pytest.mark.parametrize("tty", [False, True], ids=["plain", "terminal"])
def test_the_printer_says_a_long_budget_wait_once(tty, monkeypatch):
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    now = 1_700_000_000.0
    monkeypatch.setattr(collect_cmd.time, "time", lambda: now)
    stream = Stream()
    printer = collect_cmd._Printer(stream)
    printer(_progress(now + 2.0))  # the normal pace at 50 per second: not worth a line
    for _ in range(3):  # progress keeps coming during the wait: one line
        printer(_progress(now + 900.0))
    printer(_progress(None, done=5))
    printer(_progress(now + 1500.0, done=6))  # a new wait later on: said again
    printer.close()
    out = stream.getvalue()
    assert out.count("waiting for API budget until") == 2, out
    assert "ETA 1 h 06 min" in out or "ETA 1 h 6 min" in out, out
    if not tty:  # the status lines are not repeated while nothing moves
        assert len(re.findall(r"\[running/candles\] 4/10", out)) == 1, out


def test_collect_says_when_the_rate_limits_hold_it_back(monkeypatch, tmp_path, capsys):
    from expirytrack_desktop.collect import job

    monkeypatch.setattr(collect_cmd, "BUDGET_WAIT_SAY_S", 0.5)
    monkeypatch.setattr(job, "IDLE_PROGRESS_S", 0.1)
    app = make_app(strikes=1)
    exp = app.market.expiries("NSE_INDEX|Nifty 50")[-1].isoformat()
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
    with serve(app) as url:
        code = main(
            ["collect", "-i", "NIFTY", "-e", exp, "--months", "1", "--api-base", url,
             "--db", str(tmp_path / "b.sqlite3"), "--rate-limit", "4/2"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == exitcodes.OK, err
    assert "waiting for API budget until" in err, err
    assert "allow no more requests before then" in err
