"""Ledgers: atomic reserve, exact waits, pruning, sharing across connections and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from expirytrack_desktop.upstox.ledger import MemoryLedger, SqliteLedger

WINDOWS = ((3, 1.0), (5, 10.0))


@pytest.fixture(params=["memory", "sqlite"])
def ledger(request, tmp_path):
    if request.param == "memory":
        yield MemoryLedger()
    else:
        led = SqliteLedger(tmp_path / "ledger.sqlite")
        yield led
        led.close()


def test_reserve_until_full_then_exact_wait(ledger):
    assert [ledger.reserve(100.0 + i * 0.1, WINDOWS) for i in range(3)] == [0.0, 0.0, 0.0]
    wait = ledger.reserve(100.25, WINDOWS)
    # The oldest send (100.0) leaves the 1 s window at 101.0.
    assert wait == pytest.approx(0.75, abs=1e-3)
    assert ledger.counts(100.25, [1.0, 10.0]) == [3, 3]
    assert ledger.reserve(100.25 + wait, WINDOWS) == 0.0
    assert ledger.reserve(101.5, WINDOWS) == 0.0
    # 5 in 10 s now: the 10 s window binds, until 100.0 + 10 s.
    assert ledger.reserve(102.5, WINDOWS) == pytest.approx(7.5, abs=1e-3)
    assert ledger.counts(102.5, [1.0, 10.0]) == [0, 5]


def test_refused_reservation_records_nothing(ledger):
    for i in range(3):
        ledger.reserve(50.0 + i * 0.01, WINDOWS)
    for _ in range(10):
        assert ledger.reserve(50.5, WINDOWS) > 0
    assert ledger.counts(50.5, [10.0]) == [3]


def test_clock_step_back_is_conservative(ledger):
    for i in range(3):
        ledger.reserve(200.0 + i * 0.01, WINDOWS)
    # The wall clock jumped back 5 s: the "future" sends still count.
    assert ledger.reserve(195.0, WINDOWS) > 0


def test_old_rows_are_pruned(tmp_path):
    led = SqliteLedger(tmp_path / "p.sqlite", keep_seconds=100.0)
    for i in range(600):
        assert led.reserve(i * 1.0, ((10, 1.0),)) == 0.0
    led.close()
    with sqlite3.connect(tmp_path / "p.sqlite") as conn:
        (rows,) = conn.execute("SELECT COUNT(*) FROM sends").fetchone()
    assert rows < 400


def test_wal_mode(tmp_path):
    led = SqliteLedger(tmp_path / "w.sqlite")
    led.reserve(1.0, WINDOWS)
    led.close()
    with sqlite3.connect(tmp_path / "w.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _hammer(path: str, start: float, results) -> None:
    led = SqliteLedger(path)
    granted = 0
    for i in range(400):
        if led.reserve(start + i * 1e-4, ((25, 1000.0),)) == 0.0:
            granted += 1
    led.close()
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
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sends").fetchone()[0] == 25
