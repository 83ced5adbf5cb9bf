"""Deadline order across processes sharing the budget (upstox/ledger.py, table ``waiting``):
a process that finds room lets a live process waiting with a more urgent priority go first;
a stalled, dead or idle waiter stops counting. Two real processes on one ledger file, and the
rules step by step with explicit clock values on two ledgers of one file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from expirytrack_desktop.upstox.ledger import SqliteLedger

ROOT = Path(__file__).resolve().parents[1]
ONE_PER_SECOND = ((1, 1.0),)


def sent(ledger: SqliteLedger, now: float, priority: int | None = None) -> bool:
    """One send at ``now`` if the ledger grants it (answered at once); False: refused."""
    r = ledger.reserve(now, ONE_PER_SECOND, priority=priority)
    if r.ticket is not None:
        ledger.complete(r.ticket, now)
    return r.ticket is not None


@pytest.fixture
def two(tmp_path):
    path = tmp_path / "ledger.sqlite"
    alive: set[int] = {os.getpid()}
    a = SqliteLedger(path, pid_alive=lambda pid: pid in alive, yield_grace_s=2.0)
    b = SqliteLedger(path, pid_alive=lambda pid: pid in alive, yield_grace_s=2.0)
    yield a, b, alive
    a.close()
    b.close()


def test_the_more_urgent_waiter_takes_the_freed_slot(two):
    a, b, _ = two
    assert sent(a, 0.0, 5)
    assert not sent(b, 0.5, 9)  # full: b waits
    assert not sent(a, 0.6, 5)  # a waits too, more urgent
    later = b.reserve(1.01, ONE_PER_SECOND, priority=9)  # room now, but a comes first
    assert later.ticket is None and 0 < later.wait < 0.5
    assert sent(a, 1.02, 5)
    assert sent(b, 2.03, 9)  # a is served


def test_equal_or_lower_urgency_does_not_hold_anyone_back(two):
    a, b, _ = two
    assert sent(a, 0.0, 5)
    assert not sent(b, 0.5, 5)
    assert not sent(a, 0.6, 9)  # a now less urgent
    assert sent(b, 1.01, 5)  # same priority: go
    assert sent(b, 2.02)  # no priority given: never waits


def test_a_stalled_waiter_is_ignored_after_the_grace(two):
    a, b, _ = two
    assert sent(b, 0.0, 9)
    assert not sent(a, 0.5, 1)  # says: back at ~1.0
    # a never asks again (its process hangs): b waits for it, but only until the grace ends
    assert not sent(b, 1.5, 9)
    assert not sent(b, 2.9, 9)
    assert sent(b, 3.2, 9)


def test_an_idle_waiter_is_ignored_at_once(two):
    a, b, _ = two
    assert sent(b, 0.0, 9)
    assert not sent(a, 0.5, 1)
    a.idle()  # its last waiting request was cancelled
    assert sent(b, 1.01, 9)


def test_a_waiter_whose_process_died_is_ignored_at_once(tmp_path):
    from expirytrack_desktop.store.processes import pid_alive

    path = tmp_path / "ledger.sqlite"
    mine = SqliteLedger(path, pid_alive=pid_alive)
    blind = SqliteLedger(path)  # no way to tell a dead process: waits out the grace
    try:
        assert sent(mine, 0.0, 9)
        dies = (
            "import os, sys\n"
            "from expirytrack_desktop.upstox.ledger import SqliteLedger\n"
            "led = SqliteLedger(sys.argv[1])\n"
            "assert led.reserve(0.5, ((1, 1.0),), priority=1).ticket is None\n"
            "os._exit(0)  # gone without withdrawing its row\n"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, "-c", dies, str(path)], env=env, cwd=ROOT, check=True)
        assert not sent(blind, 1.01, 9)
        assert sent(mine, 1.02, 9)
    finally:
        mine.close()
        blind.close()


CHILD = """
import asyncio, os, sys, time
from expirytrack_desktop.upstox.ledger import SqliteLedger
from expirytrack_desktop.upstox.limiter import SEND_SCOPE, RateLimiter, RateLimitSpec, SendScope

path, label, priority, n, log, ready, go = sys.argv[1:]
ledger = SqliteLedger(path, yield_grace_s=30.0)
limiter = RateLimiter(RateLimitSpec.parse("1/0.2"), ledger=ledger, margin=0.05)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)

async def main():
    SEND_SCOPE.set(SendScope(priority=int(priority)))
    for _ in range(int(n)):
        permit = await limiter.acquire()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (label + "\\n").encode())
        os.close(fd)
        permit.release()

asyncio.run(main())
ledger.close()
"""


def test_two_processes_the_earlier_deadline_gets_the_slots_while_both_wait(tmp_path):
    ledger, log, go = tmp_path / "ledger.sqlite", tmp_path / "grants.log", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs, ready = [], []
    # later deadline (a window's expiry ordinal) vs earlier: 6 requests each at 1 per 0.25 s
    for label, priority in (("L", 739_500), ("E", 739_400)):
        flag = tmp_path / f"ready-{label}"
        ready.append(flag)
        args = [str(ledger), label, str(priority), "6", str(log), str(flag), str(go)]
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, cwd=ROOT))
    try:
        deadline = time.monotonic() + 60
        while not all(f.exists() for f in ready):
            assert time.monotonic() < deadline, "children did not start"
            assert all(p.poll() is None for p in procs), "a child failed to start"
            time.sleep(0.01)
        go.touch()
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:  # a failed start left the other child waiting for "go" for ever
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    grants = log.read_text().split()
    assert sorted(grants) == ["E"] * 6 + ["L"] * 6
    last_e = max(i for i, g in enumerate(grants) if g == "E")
    # only the very first slot, taken before E was waiting, may go to L
    assert grants[:last_e].count("L") <= 1, grants
