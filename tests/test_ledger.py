"""Ledgers: atomic reserve, exact waits, in-flight accounting, pruning, sharing across
connections and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing

import pytest

from expirytrack_desktop.upstox.ledger import MemoryLedger, SqliteLedger

WINDOWS = ((3, 1.0), (5, 10.0))


@pytest.fixture(params=["memory", "sqlite"])
def ledger(request, tmp_path):
    if request.param == "memory":
        yield MemoryLedger(hold_seconds=30.0)
    else:
        led = SqliteLedger(tmp_path / "ledger.sqlite", hold_seconds=30.0)
        yield led
        led.close()


def send(ledger, now: float, latency: float = 0.0) -> bool:
    """Reserve at ``now``; if granted, answer after ``latency``."""
    ticket, wait, _ = ledger.reserve(now, WINDOWS)
    if ticket is None:
        assert wait > 0
        return False
    ledger.complete(ticket, now + latency)
    return True


def test_reserve_until_full_then_exact_wait(ledger):
    assert [send(ledger, 100.0 + i * 0.1) for i in range(3)] == [True, True, True]
    ticket, wait, on_inflight = ledger.reserve(100.25, WINDOWS)
    # The oldest send (100.0) leaves the 1 s window at 101.0.
    assert ticket is None and not on_inflight
    assert wait == pytest.approx(0.75, abs=1e-3)
    assert ledger.counts(100.25, [1.0, 10.0]) == [3, 3]
    assert send(ledger, 100.25 + wait)
    assert send(ledger, 101.5)
    # 5 in 10 s now: the 10 s window binds, until 100.0 + 10 s.
    _, wait, _ = ledger.reserve(102.5, WINDOWS)
    assert wait == pytest.approx(7.5, abs=1e-3)
    assert ledger.counts(102.5, [1.0, 10.0]) == [0, 5]


def test_latency_extends_occupation(ledger):
    """A request answered 0.4 s after its send may have arrived then: it counts till +1.4 s."""
    for i in range(3):
        assert send(ledger, 10.0 + i * 0.01, latency=0.4)
    _, wait, _ = ledger.reserve(10.5, WINDOWS)
    assert wait == pytest.approx(10.4 + 1.0 - 10.5, abs=1e-3)


def test_in_flight_requests_count_until_answered(ledger):
    tickets = [ledger.reserve(5.0 + i * 0.01, WINDOWS).ticket for i in range(3)]
    assert None not in tickets
    # 2 s later the 1 s window would be free, but all three may still be on their way.
    ticket, _, on_inflight = ledger.reserve(7.0, WINDOWS)
    assert ticket is None and on_inflight
    assert ledger.counts(7.0, [1.0]) == [3]
    ledger.complete(tickets[0], 7.1)
    ledger.complete(tickets[0], 9.0)  # idempotent: the first answer counts
    assert ledger.reserve(7.2, WINDOWS).ticket is None  # answered at 7.1: occupies till 8.1
    assert ledger.reserve(8.2, WINDOWS).ticket is not None


def test_unanswered_send_is_assumed_arrived_after_hold(ledger):
    for i in range(3):
        assert ledger.reserve(1.0 + i * 0.01, WINDOWS).ticket is not None
    # hold is 30 s: until 31 s (+ the 1 s window) nothing fits; after that it does.
    assert ledger.reserve(31.5, WINDOWS).ticket is None
    assert ledger.reserve(32.1, WINDOWS).ticket is not None


def test_refused_reservation_records_nothing(ledger):
    for i in range(3):
        send(ledger, 50.0 + i * 0.01)
    for _ in range(10):
        assert ledger.reserve(50.5, WINDOWS).ticket is None
    assert ledger.counts(50.5, [10.0]) == [3]


def test_clock_step_back_is_conservative(ledger):
    for i in range(3):
        send(ledger, 200.0 + i * 0.01)
    # The wall clock jumped back 5 s: the "future" sends still count.
    assert ledger.reserve(195.0, WINDOWS).ticket is None


def test_old_rows_are_pruned(tmp_path):
    with closing(SqliteLedger(tmp_path / "p.sqlite", keep_seconds=100.0, hold_seconds=10.0)) as led:
        for i in range(600):
            ticket = led.reserve(i * 1.0, ((10, 1.0),)).ticket
            assert ticket is not None
            led.complete(ticket, i * 1.0 + 0.01)
    with closing(sqlite3.connect(tmp_path / "p.sqlite")) as conn:
        (rows,) = conn.execute("SELECT COUNT(*) FROM sent_requests").fetchone()
    assert rows < 400


def test_wal_mode(tmp_path):
    with closing(SqliteLedger(tmp_path / "w.sqlite")) as led:
        led.reserve(1.0, WINDOWS)
    with closing(sqlite3.connect(tmp_path / "w.sqlite")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _hammer(path: str, start: float, results) -> None:
    with closing(SqliteLedger(path)) as led:
        granted = 0
        for i in range(400):
            reservation = led.reserve(start + i * 1e-4, ((25, 1000.0),))
            if reservation.ticket is not None:
                led.complete(reservation.ticket, start + i * 1e-4)
                granted += 1
    results.put(granted)


def test_two_processes_never_both_take_the_last_slot(tmp_path):
    """Real OS processes racing on one file: exactly the limit is granted in total."""
    path = str(tmp_path / "race.sqlite")
    SqliteLedger(path).close()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, 10.0, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sum(results.get(timeout=5) for _ in procs) == 25
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sent_requests").fetchone()[0] == 25


def test_ends_are_the_budget_already_used(tmp_path):
    """What an estimate starts from: the end of every send still inside a window, the
    answered ones at their answer, the one in flight no earlier than now."""
    for make in (MemoryLedger, lambda: SqliteLedger(tmp_path / "ends.sqlite3")):
        with closing(make()) as ledger:
            a = ledger.reserve(100.0, [(10, 60.0)]).ticket
            b = ledger.reserve(101.0, [(10, 60.0)]).ticket
            ledger.reserve(102.0, [(10, 60.0)])  # still in flight
            assert a is not None and b is not None
            ledger.complete(a, 100.5)
            ledger.complete(b, 101.2)
            assert ledger.ends(110.0, 60.0) == pytest.approx([100.5, 101.2, 110.0])
            assert ledger.ends(162.0, 60.0) == pytest.approx([162.0])  # the first two are out
