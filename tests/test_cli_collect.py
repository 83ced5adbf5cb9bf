"""``expirytrack collect/status/jobs/retry`` through ``cli.main.main`` against the simulator.

Each bad input must give one clear ``error:`` line, its documented exit code, and lose nothing.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from contextlib import closing
from datetime import date

import pytest

from expirytrack_desktop import runtime
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN
from expirytrack_desktop.store import open_database
from tests.collect_helpers import NIFTY, ground_truth_rows, make_app


async def _no_sleep(_s: float) -> None:
    return None


@pytest.fixture
def sim(monkeypatch, tmp_path):
    app = make_app()
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "cli.sqlite3"))
    with runtime.override(
        transport=app.transport(),
        client_kwargs={"sleep": _no_sleep, "max_attempts": 2},
        ledger_path=False,
        busy_timeout_ms=100,
    ):
        yield app


def expiry(app, back: int = 1) -> str:
    return app.market.expiries(NIFTY)[-back].isoformat()


def collect(app, *extra: str) -> list[str]:
    return ["collect", "-i", "NIFTY", "-e", expiry(app), "--months", "1", *extra]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def assert_exact(db_path, app, exp: str) -> None:
    from datetime import date

    from expirytrack_desktop.collect import target_range

    d = date.fromisoformat(exp)
    f, t = target_range(d, 1)
    with open_database(db_path) as db:
        keys = [c.expired_key for c in db.contracts_for(NIFTY, d)]
        assert len(keys) == len(
            app.market.option_contracts(NIFTY, d) + app.market.future_contracts(NIFTY, d)
        )
        for k in keys:
            assert db.candle_rows(k) == ground_truth_rows(app.market, k, "1minute", f, t)


def test_collect_then_status(sim, capsys, tmp_path):
    assert main(collect(sim)) == exitcodes.OK
    out = capsys.readouterr().out
    assert "Plan: 1 expiries" in out
    assert "completed;" in out and "0 failed, 0 re-fetched" in out
    assert_exact(tmp_path / "cli.sqlite3", sim, expiry(sim))
    assert main(["status"]) == exitcodes.OK
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("NIFTY") and expiry(sim) in x)
    assert "complete" in line.split()
    assert "completed" in out  # job history
    assert main(["jobs"]) == exitcodes.OK
    assert "completed" in capsys.readouterr().out


def test_estimate_only_sends_nothing(sim, capsys):
    assert main([*collect(sim), "--estimate-only"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert out.startswith("Plan: 1 expiries, about 200 contracts")
    assert sim.stats.requests == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "Nifty 50", "-e", "2025-09-30"], "malformed instrument 'Nifty 50'"),
        (["-i", "NSE_FO|Nifty 50", "-e", "2025-09-30"], "segment 'NSE_FO'"),
        (["-i", "NIFTY", "-e", "30-09-2025"], "bad expiry date '30-09-2025'"),
        (["-i", "NIFTY", "-e", "2025-09-30", "--rate-limit", "fast"], "invalid rate limit"),
        (["-i", "NIFTY", "-e", "2025-09-30", "--months", "99"], "months must be between"),
    ],
)
def test_malformed_input_is_one_line_bad_input(sim, capsys, args, message):
    assert main(["collect", *args]) == exitcodes.BAD_INPUT
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and message in err[0]
    assert sim.stats.requests == 0


def test_unknown_instrument_key(sim, capsys, tmp_path):
    code = main(["collect", "-i", "NSE_INDEX|Nifty 51", "-e", "2025-09-30"])
    assert code == exitcodes.BAD_INPUT
    out, err = capsys.readouterr()
    lines = error_lines(err)
    assert len(lines) == 1 and "NSE_INDEX|Nifty 51" in lines[0] and "UDAPI100011" in lines[0]
    assert "Plan:" not in out and "Job " not in err
    with open_database(tmp_path / "cli.sqlite3") as db:
        assert db.list_jobs() == []


def test_expiry_not_offered(sim, capsys, tmp_path):
    code = main(["collect", "-i", "NIFTY", "-e", "2024-01-04"])
    assert code == exitcodes.BAD_INPUT
    out, err = capsys.readouterr()
    lines = error_lines(err)
    assert len(lines) == 1 and "2024-01-04 is not offered by the API" in lines[0]
    assert err.strip() == lines[0]  # nothing but the one line: no plan, no "Job 1"
    assert "Plan:" not in out
    with open_database(tmp_path / "cli.sqlite3") as db:
        assert db.counts().contracts == 0
        assert db.list_jobs() == []  # the job history stays empty
    assert main(["status"]) == exitcodes.OK
    assert "failed" not in capsys.readouterr().out


def test_no_token_needs_login(sim, capsys, monkeypatch):
    monkeypatch.delenv("EXPIRYTRACK_ACCESS_TOKEN")
    assert main(collect(sim)) == exitcodes.NEEDS_LOGIN
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "expirytrack login" in err[0]


def test_corrupt_database_file(sim, capsys, tmp_path):
    bad = tmp_path / "corrupt.sqlite3"
    bad.write_bytes(b"\x00garbage" * 1000)
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    assert main([*collect(sim), "--db", str(bad)]) == exitcodes.STORAGE
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "not a usable ExpiryTrack database" in err[0]
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == digest
    assert main(["status", "--db", str(bad)]) == exitcodes.STORAGE


def test_unwritable_database_path(sim, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code = main([*collect(sim), "--db", str(tmp_path / "file" / "db.sqlite3")])
    assert code == exitcodes.STORAGE
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "Cannot create the folder" in err[0]


def test_newer_database_refused(sim, capsys, tmp_path):
    path = tmp_path / "newer.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 42")
        conn.commit()
    assert main([*collect(sim), "--db", str(path)]) == exitcodes.STORAGE
    assert "newer ExpiryTrack" in capsys.readouterr().err


def test_database_locked_by_another_process(sim, capsys, tmp_path):
    path = tmp_path / "cli.sqlite3"
    open_database(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        assert main(collect(sim)) == exitcodes.STORAGE
    finally:
        other.execute("ROLLBACK")
        other.close()
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "locked by another process" in err[0]
    assert main(collect(sim)) == exitcodes.OK  # fine once the other process lets go


def test_network_down(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", "x" * 40)
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    args = ["collect", "-i", "NIFTY", "-e", "2025-09-30", "--db", str(tmp_path / "n.sqlite3")]
    with runtime.override(client_kwargs={"sleep": _no_sleep, "max_attempts": 2}, ledger_path=False):
        code = main([*args, "--api-base", "http://127.0.0.1:9"])
    assert code == exitcodes.NETWORK
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "cannot be reached" in err[0]


def test_disk_full_then_resume(sim, capsys, tmp_path):
    path = tmp_path / "cli.sqlite3"
    open_database(path).close()
    with closing(sqlite3.connect(path)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    with runtime.override(
        transport=sim.transport(),
        client_kwargs={"sleep": _no_sleep},
        ledger_path=False,
        max_page_count=pages + 40,
    ):
        assert main(collect(sim)) == exitcodes.STORAGE
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "Disk full" in err[0]
    with open_database(path) as db:
        assert db.integrity_check() == "ok"
        kept = db.execute("SELECT count(*) FROM fetch_window")[0][0]
    assert main(collect(sim)) == exitcodes.OK
    out = capsys.readouterr().out
    assert "0 re-fetched" in out
    assert_exact(path, sim, expiry(sim))
    with open_database(path) as db:
        windows = db.execute("SELECT count(*) FROM fetch_window")[0][0]
        contracts = len(db.contracts_for(NIFTY, date.fromisoformat(expiry(sim))))
    # One window per contract (a month fits one request); the full disk stopped the first run
    # part-way, after it had kept whole windows, and the resume fetched exactly the others.
    assert windows == contracts
    assert 1 <= kept < windows
    (stored,) = re.findall(r"(\d+) windows stored", out)
    assert int(stored) == windows - kept


def test_token_expired_mid_run_then_new_token_finishes(sim, capsys, monkeypatch, tmp_path):
    sim.expire_tokens_after(8)
    assert main(collect(sim)) == exitcodes.NEEDS_LOGIN
    captured = capsys.readouterr()
    err = error_lines(captured.err)
    assert len(err) == 1 and "run `expirytrack login`" in err[0] and "kept" in err[0]
    with open_database(tmp_path / "cli.sqlite3") as db:
        kept = db.execute("SELECT count(*) FROM fetch_window WHERE state != 'failed'")[0][0]
        assert kept > 0 and db.failed_windows() == []
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", sim.issue_token())
    assert main(collect(sim)) == exitcodes.OK
    out = capsys.readouterr().out
    assert "0 re-fetched" in out and "Job 1: completed" in out
    assert_exact(tmp_path / "cli.sqlite3", sim, expiry(sim))


def test_retry_command(sim, capsys):
    assert main(collect(sim)) == exitcodes.OK
    capsys.readouterr()
    assert main(["retry", "1"]) == exitcodes.OK
    assert "Job 1: completed; 0 windows stored" in capsys.readouterr().out
    assert main(["retry", "99"]) == exitcodes.BAD_INPUT


def test_retry_of_a_job_that_does_not_exist_says_so_before_asking_a_login(sim, capsys, monkeypatch):
    assert main(collect(sim)) == exitcodes.OK
    monkeypatch.delenv("EXPIRYTRACK_ACCESS_TOKEN")
    capsys.readouterr()
    assert main(["retry", "99"]) == exitcodes.BAD_INPUT
    assert error_lines(capsys.readouterr().err) == ["error: no collection job 99"]
    assert main(["retry", "1"]) == exitcodes.NEEDS_LOGIN  # a real job: then the login


def test_demo_mode_uses_its_own_database(monkeypatch, capsys):
    app = make_app()
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    with runtime.override(demo_app=app, client_kwargs={"sleep": _no_sleep}, ledger_path=False):
        code = main(["collect", "--demo", "-i", "NIFTY", "-e", expiry(app), "--months", "1"])
        assert code == exitcodes.OK
        rt = runtime.Runtime.create(demo=True)
        assert rt.db_path == rt.paths.demo_db_path and rt.db_path.exists()
        assert not rt.paths.db_path.exists()
        assert rt.ledger_path is None
    assert runtime.Runtime.create(demo=True).ledger_path.name == "ratelimit-demo.sqlite3"
    assert app.stats.requests > 0


def test_token_from_the_secret_store(sim, capsys, monkeypatch):
    from expirytrack_desktop.auth.token import TokenManager
    from expirytrack_desktop.upstox.models import TokenGrant

    monkeypatch.delenv("EXPIRYTRACK_ACCESS_TOKEN")
    rt = runtime.Runtime.create()
    TokenManager(rt.secret_store()).save_grant(TokenGrant(access_token=sim.issue_token()))
    assert main(collect(sim)) == exitcodes.OK
    assert "completed;" in capsys.readouterr().out


def test_account_without_upstox_plus(sim, capsys, monkeypatch):
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", sim.issue_token(plus=False))
    assert main(collect(sim)) == exitcodes.NEEDS_LOGIN
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "Upstox Plus" in err[0]


def test_every_stop_reason_has_an_exit_code():
    from expirytrack_desktop.cli import exitcodes
    from expirytrack_desktop.collect.events import StopReason

    assert set(exitcodes.FOR_STOP_REASON) == {r.value for r in StopReason}
