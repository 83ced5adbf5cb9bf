"""The real command in a child process against the simulator on a loopback port:
Ctrl+C and kill -9 mid-run lose nothing, and the rerun finishes without re-fetching."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date

import pytest

from expirytrack_desktop.collect import target_range
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, FaultConfig, serve
from expirytrack_desktop.store import open_database
from tests.collect_helpers import NIFTY, ground_truth_rows, make_app

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(base: str, exp: date, home, db) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        EXPIRYTRACK_HOME=str(home),
        EXPIRYTRACK_ACCESS_TOKEN=DEMO_ACCESS_TOKEN,
        EXPIRYTRACK_RATE_LIMIT="100000/1",
        PYTHONUNBUFFERED="1",
    )
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


def wait_for_candles(proc: subprocess.Popen) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "[running/candles]" in line:
            return
    raise AssertionError(f"the run ended before fetching candles: rc={proc.wait()}")


def test_interrupt_and_kill_mid_run_then_finish(tmp_path):
    app = make_app(faults=FaultConfig(latency_ms=(60, 120)))
    exp = app.market.expiries(NIFTY)[-1]
    db_path = tmp_path / "proc.sqlite3"
    with serve(app) as base:
        proc = start(base, exp, tmp_path, db_path)
        wait_for_candles(proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "progress so far is kept" in err
        with open_database(db_path) as db:
            assert db.integrity_check() == "ok"
            assert db.list_jobs()[0].status == "cancelled"
            after_cancel = db.execute("SELECT count(*) FROM fetch_window")[0][0]

        proc = start(base, exp, tmp_path, db_path)
        wait_for_candles(proc)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.communicate(timeout=60)
        with open_database(db_path) as db:
            assert db.integrity_check() == "ok"
            (job,) = db.list_jobs()
            assert job.status == "interrupted"
            # every window marked done holds exactly its candles
            for cid, n in db.execute(
                "SELECT contract_id, sum(candles) FROM fetch_window GROUP BY 1"
            ):
                assert (
                    db.execute("SELECT count(*) FROM candle WHERE contract_id = ?", (cid,))[0][0]
                    == n
                )
            after_kill = db.execute("SELECT count(*) FROM fetch_window")[0][0]
        assert after_kill >= after_cancel

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
