"""The real command through a network outage, a token expiry and kill -9 (README "Long runs"):
it says once that it waits, continues by itself, and the simulator answers every candle
window exactly once over all runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.long_run import parse_wait
from expirytrack_desktop.sandbox import SimulatorApp, serve
from expirytrack_desktop.store import open_database
from tests.collect_helpers import NIFTY, cli_env, make_app
from tests.survival_helpers import CandleLog, SwitchableServer, stored, windows_done

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Child:
    """``expirytrack collect`` in a child process; its stderr read line by line as it comes."""

    def __init__(self, base: str, exp: date, home, db, *extra: str) -> None:
        env = cli_env(home)
        argv = ["collect", "-i", "NIFTY", "-e", exp.isoformat(), "--months", "2", *extra]
        argv += ["--concurrency", "2", "--db", str(db), "--api-base", base]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "expirytrack_desktop.cli.main", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_line(self, start: str) -> None:
        with self.changed:
            while not any(x.startswith(start) for x in self.lines):
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"the run ended first: {self.lines}")
                self.changed.wait(0.1)

    def finish(self) -> tuple[int, str]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout=300)
        self._reader.join(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, out


def _wait_until(check, proc: subprocess.Popen) -> None:
    event = threading.Event()
    while not check():
        if proc.poll() is not None:
            out, err = proc.communicate() if proc.stdout else ("", "")
            raise AssertionError(f"the run ended before the test's moment: {out} {err}")
        event.wait(0.05)


@posix_only
def test_kill_9_mid_run_then_rerun_fetches_every_window_once(tmp_path):
    app = make_app()
    exp = app.market.expiries(NIFTY)[-1]
    reference = _reference(tmp_path, exp)
    log = CandleLog(app, hold_after=4)
    db_path = tmp_path / "kill.sqlite3"
    with serve(app) as base:
        try:
            child = Child(base, exp, tmp_path, db_path)
            # 4 answers stored, the next requests held: kill -9 with nothing answered and
            # not yet written (the only way any process could be made to fetch twice).
            _wait_until(lambda: log.holding.is_set() and windows_done(db_path) >= 4, child.proc)
            child.proc.send_signal(signal.SIGKILL)
            log.cut()
            code, _ = child.finish()
            assert code == -signal.SIGKILL
            log.release()
            child = Child(base, exp, tmp_path, db_path)
            code, out = child.finish()
        finally:
            log.release()
    assert code == exitcodes.OK, child.lines
    assert "0 re-fetched" in out
    assert log.twice() == [] and log.total() == _windows(db_path)
    with open_database(db_path) as db:
        assert stored(db, NIFTY, exp) == reference
        (job,) = db.list_jobs()
        assert job.status == "completed"


@posix_only
def test_network_outage_waits_says_so_once_and_finishes(tmp_path):
    app = make_app()
    exp = app.market.expiries(NIFTY)[-1]
    reference = _reference(tmp_path, exp)
    log = CandleLog(app, hold_after=4)
    db_path = tmp_path / "net.sqlite3"
    with SwitchableServer(app) as server:
        try:
            child = Child(server.base, exp, tmp_path, db_path)
            _wait_until(lambda: log.holding.is_set() and windows_done(db_path) >= 4, child.proc)
            log.cut()
            server.down()  # the held requests never get their answer
            child.wait_line("waiting for the network since ")
            log.release()
            server.up()
            code, out = child.finish()
        finally:
            log.release()
    assert code == exitcodes.OK, child.lines
    waits = [x for x in child.lines if x.startswith("waiting for the network")]
    assert len(waits) == 1, child.lines
    assert "the API answers again: continuing" in child.lines
    assert "0 re-fetched" in out
    assert log.twice() == []
    with open_database(db_path) as db:
        assert stored(db, NIFTY, exp) == reference


def test_collect_waits_for_a_new_login_then_finishes(tmp_path, capsys):
    """The token expires mid-run: one line says to log in; a login (the token store gets a new
    token) lets the same run finish; nothing is fetched twice."""
    from expirytrack_desktop.auth.secrets import SecretStore
    from expirytrack_desktop.auth.token import TokenManager
    from expirytrack_desktop.cli.main import main
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.upstox.models import TokenGrant

    app = make_app()
    exp = app.market.expiries(NIFTY)[-1]
    reference = _reference(tmp_path, exp)
    log = CandleLog(app)
    tokens = TokenManager(SecretStore.for_paths(AppPaths.default()))

    def login() -> None:
        grant = TokenGrant(app.issue_token(), "DEMO1", "Asha", "a@example.com", None)
        tokens.save_grant(grant, datetime.now(UTC))

    login()
    db_path = tmp_path / "login.sqlite3"
    result: list[int] = []
    app.expire_tokens_after(10)
    with serve(app) as base:
        argv = ["collect", "-i", "NIFTY", "-e", exp.isoformat(), "--months", "2"]
        argv += ["--db", str(db_path), "--api-base", base, "--rate-limit", "100000/1"]
        run = threading.Thread(target=lambda: result.append(main(argv)))
        run.start()
        err = ""
        while "needs login:" not in err:
            assert run.is_alive(), err
            err += capsys.readouterr().err
            threading.Event().wait(0.05)
        login()
        run.join(timeout=300)
    err += capsys.readouterr().err
    assert result == [exitcodes.OK], err
    line = next(x for x in err.splitlines() if x.startswith("needs login:"))
    assert "`expirytrack login` in another terminal" in line
    assert err.count("needs login:") == 1
    assert "new login found: continuing" in err
    assert log.twice() == []
    with open_database(db_path) as db:
        assert stored(db, NIFTY, exp) == reference


@posix_only
def test_watch_run_kill_9_then_rerun_fetches_every_window_once(tmp_path):
    """The same for `watch run` (a days-long backfill): killed mid-run, run again, done."""
    from expirytrack_desktop.cli.main import main
    from expirytrack_desktop.collect import target_range
    from tests.collect_helpers import ground_truth_rows

    app = make_app()
    log = CandleLog(app, hold_after=10)
    db_path = tmp_path / "watch.sqlite3"
    common = ["--db", str(db_path)]
    add = ["watch", "add", "nf", "-i", "NIFTY", "--months", "1", *common]
    assert main(add) == exitcodes.OK

    def child(base: str) -> subprocess.Popen:
        env = cli_env()
        argv = ["watch", "run", "nf", "--concurrency", "2", *common, "--api-base", base]
        return subprocess.Popen(
            [sys.executable, "-m", "expirytrack_desktop.cli.main", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    with serve(app) as base:
        try:
            proc = child(base)
            _wait_until(lambda: log.holding.is_set() and windows_done(db_path) >= 10, proc)
            proc.send_signal(signal.SIGKILL)
            log.cut()
            proc.communicate(timeout=60)
            log.release()
            proc = child(base)
            out, err = proc.communicate(timeout=300)
        finally:
            log.release()
    assert proc.returncode == exitcodes.OK, err
    assert "0 re-fetched" in out
    assert log.twice() == [] and log.total() == windows_done(db_path) > 10
    with open_database(db_path) as db:
        checked = 0
        for exp in app.market.expiries(NIFTY):
            f, t = target_range(exp, 1)
            for c in db.contracts_for(NIFTY, exp):
                rows = ground_truth_rows(app.market, c.expired_key, "1minute", f, t)
                assert db.candle_rows(c.expired_key) == rows
                checked += 1
        assert checked == log.total()
        assert db.list_jobs()[0].status == "completed"


def test_wait_option_values():
    assert parse_wait("forever") is None
    assert parse_wait("0") == 0
    assert parse_wait("90") == 90 and parse_wait("15m") == 900 and parse_wait("2h") == 7200
    with pytest.raises(Exception, match="not a duration"):
        parse_wait("soon")


def _reference(tmp_path, exp: date) -> dict:
    """An uninterrupted run's candles (same market, its own simulator, in-process)."""
    import asyncio

    from expirytrack_desktop.collect import JobState, Selection
    from tests.collect_helpers import make_client, make_collector, make_db

    async def run() -> dict:
        app: SimulatorApp = make_app()
        with make_db(tmp_path, "reference.sqlite3") as db:
            client = make_client(app)
            try:
                r = await make_collector(db, client).run(Selection([NIFTY], [exp], months=2))
            finally:
                await client.aclose()
            assert r.state == JobState.COMPLETED
            return await db.run(stored, db, NIFTY, exp)

    return asyncio.run(run())


def _windows(db_path) -> int:
    return windows_done(db_path)


def test_a_run_that_outlasts_the_token_says_when_it_will_pause():
    import argparse
    from datetime import timedelta

    from expirytrack_desktop.auth.secrets import SecretStore
    from expirytrack_desktop.auth.token import TokenManager
    from expirytrack_desktop.cli.long_run import token_expiry_note
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.timeutil import IST
    from expirytrack_desktop.upstox.models import TokenGrant

    store = SecretStore.for_paths(AppPaths.default())
    issued = datetime(2026, 12, 7, 20, 0, tzinfo=IST)  # valid until 03:30 IST tomorrow
    TokenManager(store).save_grant(TokenGrant("t" * 32, "AB1", "Asha"), issued)
    args = argparse.Namespace(secret_store=store, login_wait=3600.0)
    now = issued + timedelta(hours=1)
    assert token_expiry_note(args, 3600, now) is None  # done by 22:00
    note = token_expiry_note(args, 10 * 3600, now)
    assert note is not None and "2026-12-08 03:30 IST" in note and "for at most 60m" in note
    args.login_wait = None
    assert "for at most" not in (token_expiry_note(args, 10 * 3600, now) or "x for at most")
    args.login_wait = 0
    assert "stops then (exit 3)" in (token_expiry_note(args, 10 * 3600, now) or "")
    assert token_expiry_note(argparse.Namespace(), 10 * 3600, now) is None  # env/demo token


@pytest.mark.parametrize("tty", [False, True], ids=["plain", "terminal"])
def test_the_printer_says_each_wait_once(tty):
    """Progress events keep coming while a run waits: its line is printed once, then once
    when the wait ends (plain lines, or above the progress bar on a terminal)."""
    import io

    from expirytrack_desktop.cli.collect_cmd import _Printer
    from expirytrack_desktop.collect import JobState, Phase, Progress

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    def progress(kind: str | None, text: str | None = None) -> Progress:
        return Progress(1, JobState.RUNNING, Phase.CANDLES, 10, 4, 0, 9, 100, 0.0, None, "", 0,
                        None, waiting_for=kind, waiting=text)  # fmt: skip

    net = "waiting for the network since 14:02, next try in 1 s"
    stream = Stream()
    printer = _Printer(stream)
    printer(progress(None))
    for n in (1, 2, 4):
        printer(progress("network", net if n == 1 else net.replace("1 s", f"{n} s")))
    printer(progress(None))
    printer(progress("login", "needs login: run `expirytrack login` in another terminal"))
    printer(progress("login", "needs login: run `expirytrack login` in another terminal"))
    printer(progress(None))
    printer.close()
    out = stream.getvalue()
    assert out.count("waiting for the network since") == 1
    assert out.count("the API answers again: continuing") == 1
    assert out.count("needs login: run") == 1
    assert out.count("new login found: continuing") == 1
