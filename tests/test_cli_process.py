"""The real command in a child process against the simulator on a loopback port:
Ctrl+C and kill -9 mid-run lose nothing, and the rerun finishes without re-fetching."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import date

import pytest

from expirytrack_desktop.collect import target_range
from expirytrack_desktop.sandbox import FaultConfig, SimulatorApp, serve
from expirytrack_desktop.store import open_database
from tests.collect_helpers import NIFTY, cli_env, ground_truth_rows, make_app

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(base: str, exp: date, home, db) -> subprocess.Popen:
    env = cli_env(home)
    args = ["collect", "-i", "NIFTY", "-e", exp.isoformat(), "--concurrency", "1"]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "expirytrack_desktop.cli.main",
            *args,
            "--db",
            str(db),
            "--api-base",
            base,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class CandleGate:
    """Answers the first ``after`` candle requests of each round, then holds the next one until
    opened: the child is then mid-run, with windows stored and a request in flight, for as long
    as the test needs, however loaded the machine (no race between its progress and a signal)."""

    def __init__(self, app: SimulatorApp, after: int) -> None:
        self.inner, self.after, self.seen = app.handle, after, 0
        self.holding, self.open = threading.Event(), threading.Event()
        app.handle = self.handle

    async def handle(self, method, path, query, headers, body):
        if "/historical-candle/" in path:
            self.seen += 1
            if self.seen > self.after and not self.open.is_set():
                self.holding.set()
                while not self.open.is_set():
                    await asyncio.sleep(0.01)
        return await self.inner(method, path, query, headers, body)

    def wait_holding(self, proc: subprocess.Popen) -> None:
        while not self.holding.wait(0.1):
            if proc.poll() is not None:
                raise AssertionError(f"the run ended before the gate: {proc.communicate()}")

    def next_round(self) -> None:
        self.seen = 0
        self.holding.clear()
        self.open.clear()


def wait_windows(db_path, n: int) -> None:
    """Until ``n`` windows are stored (the answers before the gate, written by the child)."""
    for _ in range(1200):
        with closing(sqlite3.connect(db_path)) as con:
            if con.execute("SELECT count(*) FROM fetch_window").fetchone()[0] >= n:
                return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} windows stored after 60 s")


def test_interrupt_and_kill_mid_run_then_finish(tmp_path):
    app = make_app(faults=FaultConfig(latency_ms=(5, 20)))
    gate = CandleGate(app, after=3)
    exp = app.market.expiries(NIFTY)[-1]
    db_path = tmp_path / "proc.sqlite3"
    with serve(app) as base:
        try:
            _interrupt_kill_finish(app, gate, base, exp, tmp_path, db_path)
        finally:
            gate.open.set()  # the server's held request ends, so the server can stop


def _interrupt_kill_finish(app, gate, base, exp, tmp_path, db_path) -> None:
    proc = start(base, exp, tmp_path, db_path)
    gate.wait_holding(proc)
    wait_windows(db_path, 3)
    proc.send_signal(signal.SIGINT)
    # The answer on its way arrives after the signal: the job commits it (it waits for the
    # answers in flight when it is cancelled, up to 30 s) and stops sending; any further
    # request before the signal is handled is answered too (the job is nowhere near its end).
    gate.open.set()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "progress so far is kept" in err
    with open_database(db_path) as db:
        assert db.integrity_check() == "ok"
        assert db.list_jobs()[0].status == "cancelled"
        after_cancel = db.execute("SELECT count(*) FROM fetch_window")[0][0]
    assert after_cancel >= 3  # the windows answered before the gate are kept

    gate.next_round()
    proc = start(base, exp, tmp_path, db_path)
    gate.wait_holding(proc)
    wait_windows(db_path, after_cancel + 3)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.communicate(timeout=60)
    with open_database(db_path) as db:
        assert db.integrity_check() == "ok"
        (job,) = db.list_jobs()
        assert job.status == "interrupted"
        # every window marked done holds exactly its candles
        for cid, n in db.execute("SELECT contract_id, sum(candles) FROM fetch_window GROUP BY 1"):
            assert (
                db.execute("SELECT count(*) FROM candle WHERE contract_id = ?", (cid,))[0][0] == n
            )
        after_kill = db.execute("SELECT count(*) FROM fetch_window")[0][0]
    assert after_kill >= after_cancel + 3

    gate.open.set()
    proc = start(base, exp, tmp_path, db_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Job 1: completed" in out and "0 re-fetched" in out
    f, t = target_range(exp, 3)
    with open_database(db_path) as db:
        keys = [c.expired_key for c in db.contracts_for(NIFTY, exp)]
        assert len(keys) > 0
        for k in keys:
            assert db.candle_rows(k) == ground_truth_rows(app.market, k, "1minute", f, t)
