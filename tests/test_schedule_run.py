"""``expirytrack schedule run``: what the OS scheduler starts. Against the simulator, with a
transport that fails on purpose: failed windows are planned again and retried with backoff,
network trouble is retried a bounded number of times, and the outcome is e-mailed (counts,
failed items; no token, no SMTP password) to a test SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest

from expirytrack_desktop import runtime
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import target_range
from expirytrack_desktop.collect.events import Counters, StopReason
from expirytrack_desktop.notify import SMTP_PASSWORD
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.schedule import Attempt, RunReport, Schedule, hooks, retry_delay
from expirytrack_desktop.settings import Settings
from expirytrack_desktop.store import open_database
from tests.collect_helpers import NIFTY, ground_truth_rows, make_app
from tests.smtp_helper import SmtpServer

SMTP_PW = "smtp-secret-Qq-4242"


class FlakyTransport(httpx.AsyncBaseTransport):
    """The simulator, except: the next ``fail_candles`` candle requests answer HTTP 500, and
    while ``down`` every request fails to connect."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.fail_candles = 0
        self.fail_contracts = 0
        self.down = False
        self.stall_candles = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path.endswith("/contract") and self.fail_contracts > 0:
            self.fail_contracts -= 1
            body = {"status": "error", "errors": [{"errorCode": "UDAPI100500", "message": "list"}]}
            return httpx.Response(500, json=body)
        if "historical-candle" in request.url.path and self.stall_candles:
            await asyncio.Event().wait()  # a server that never answers
        if "historical-candle" in request.url.path and self.fail_candles > 0:
            self.fail_candles -= 1
            body = {"status": "error", "errors": [{"errorCode": "UDAPI100500", "message": "boom"}]}
            return httpx.Response(500, json=body)
        return await self.inner.handle_async_request(request)


class Env:
    def __init__(self, app, transport, server, sleeps, token, db):
        self.app, self.transport, self.server = app, transport, server
        self.sleeps, self.token, self.db = sleeps, token, db

    @property
    def expiry(self) -> str:
        return self.app.market.expiries(NIFTY)[-1].isoformat()

    def add(self, *extra: str) -> None:
        args = ["schedule", "add", "-i", "NIFTY", "-e", self.expiry, "--months", "1",
                "--at", "16:30", "--name", "nifty", "--no-install", "--retries", "2",
                "--retry-delay", "30", "--notify-email", "me@example.com", *extra]  # fmt: skip
        assert main(args) == exitcodes.OK

    def mails(self):
        return self.server.got.messages


@pytest.fixture
def env(monkeypatch, tmp_path, memory_keyring):
    app = make_app()
    token = app.issue_token()
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", token)
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    db = tmp_path / "run.sqlite3"
    monkeypatch.setenv("EXPIRYTRACK_DB", str(db))
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def no_sleep(_s: float) -> None:
        return None

    transport = FlakyTransport(app.transport())
    with SmtpServer() as server:
        paths = AppPaths.default()
        Settings(
            smtp_host="127.0.0.1", smtp_port=server.port, smtp_security="none",
            smtp_user="mailer", smtp_from="et@example.com",
        ).save(paths.settings_path)  # fmt: skip
        memory_keyring.set_password("ExpiryTrack", SMTP_PASSWORD, SMTP_PW)
        with (
            runtime.override(
                transport=transport,
                client_kwargs={"sleep": no_sleep, "max_attempts": 1},
                ledger_path=False,
                busy_timeout_ms=200,
            ),
            hooks.override(sleep=fake_sleep),
        ):
            yield Env(app, transport, server, sleeps, token, db)


def assert_exact(env: Env) -> None:
    d = date.fromisoformat(env.expiry)
    f, t = target_range(d, 1)
    with open_database(env.db) as db:
        keys = [c.expired_key for c in db.contracts_for(NIFTY, d)]
        assert keys
        for k in keys:
            assert db.candle_rows(k) == ground_truth_rows(env.app.market, k, "1minute", f, t)


def assert_no_secret(env: Env) -> None:
    for raw in env.server.got.raw:
        assert env.token.encode() not in raw
        assert SMTP_PW.encode() not in raw


def windows(env: Env) -> int:
    with open_database(env.db) as db:
        return len(db.execute("SELECT * FROM fetch_window WHERE state != 'failed'"))


def test_failed_windows_are_planned_again_and_the_outcome_mailed(env, capsys):
    env.add()
    env.transport.fail_candles = 3
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert env.sleeps == [30.0]  # one retry, after retry_delay
    captured = capsys.readouterr()
    assert "nifty: attempt 1: finished with failed items" in captured.err
    assert "nifty: completed;" in captured.out and "2 attempt(s)" in captured.out
    assert_exact(env)
    total = windows(env)
    (msg,) = env.mails()
    assert env.server.got.auth == [("mailer", SMTP_PW)]
    subject = msg["Subject"]
    assert subject.startswith("[ExpiryTrack] nifty: completed - ")
    assert f"{total} windows" in subject and "0 failed" in subject
    body = msg.get_content()
    assert "1. failed_items: job 1," in body and "3 failed" in body
    assert "2. ok: job 1, 3 windows stored" in body  # only the 3 failed ones fetched again
    assert f"Totals:    {total} windows stored" in body
    assert "Result:    exit code 0 (complete)" in body
    assert_no_secret(env)
    state = json.loads((AppPaths.default().data_dir / "schedules" / "nifty.last.json").read_text())
    assert state["exit_code"] == 0 and state["job_id"] == 1
    log = (AppPaths.default().log_dir / "schedules.log").read_text()
    assert "nifty: attempt 2: completed" in log and env.token not in log


def test_retries_are_bounded_and_the_next_run_picks_up_the_failures(env, capsys):
    env.add()
    env.transport.fail_candles = 10**6
    assert main(["schedule", "run", "nifty"]) == exitcodes.FAILED_ITEMS
    assert env.sleeps == [30.0, 60.0]  # 2 retries, doubling
    (msg,) = env.mails()
    assert "finished with failed items" in msg["Subject"]
    body = msg.get_content()
    assert "Failed items:" in body and "boom" in body
    assert "3. failed_items" in body and "4." not in body
    assert "exit code 4" in body
    assert windows(env) == 0
    assert_no_secret(env)
    # the next scheduled run re-plans the failed windows and completes
    env.transport.fail_candles = 0
    assert main(["schedule", "run", "nifty", "--no-notify"]) == exitcodes.OK
    assert_exact(env)
    assert len(env.mails()) == 1
    assert main(["schedule", "list"]) == exitcodes.OK
    assert "exit 0" in capsys.readouterr().out


def test_a_failed_contract_list_counts_as_a_failed_item_and_is_retried(env):
    env.add()
    env.transport.fail_contracts = 1
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert env.sleeps == [30.0]
    body = env.mails()[0].get_content()
    assert (
        "1. failed_items: job 1, 0 windows stored (0 without trades), 0 candles, 1 failed" in body
    )
    assert_exact(env)


def test_network_down_is_retried_then_reported(env):
    env.add("--notify-on", "failure")
    env.transport.down = True
    assert main(["schedule", "run", "nifty"]) == exitcodes.NETWORK
    assert env.sleeps == [30.0, 60.0]
    (msg,) = env.mails()
    assert "API unreachable" in msg["Subject"]
    assert "cannot be reached" in msg.get_content()
    # notify-on failure: a good run sends nothing
    env.transport.down = False
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert len(env.mails()) == 1


def test_no_token_needs_login_and_says_so(env, monkeypatch):
    monkeypatch.delenv("EXPIRYTRACK_ACCESS_TOKEN")
    env.add()
    assert main(["schedule", "run", "nifty"]) == exitcodes.NEEDS_LOGIN
    assert env.app.stats.requests == 0 and env.sleeps == []
    (msg,) = env.mails()
    assert "needs login" in msg["Subject"]
    assert "expirytrack login" in msg.get_content()


def test_a_run_still_going_is_not_started_twice(env, capsys):
    env.add()
    lock = AppPaths.default().data_dir / "schedules" / "nifty.lock"
    holder = hold_lock(lock)  # another process is running this schedule
    try:
        assert main(["schedule", "run", "nifty"]) == exitcodes.OK
        err = capsys.readouterr().err
        assert f"already running (pid {holder.pid} on " in err and "this run is skipped" in err
        assert env.app.stats.requests == 0 and env.mails() == []
    finally:
        holder.kill()  # dies holding it: the OS lets go with the process
        holder.wait(timeout=60)
        holder.stdout.close()
        holder.stdin.close()
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert f"the previous run (pid {holder.pid} on " in capsys.readouterr().err
    assert_exact(env)


def hold_lock(lock) -> subprocess.Popen[str]:
    code = (
        "import sys; from pathlib import Path; from expirytrack_desktop.schedule import RunLock\n"
        "with RunLock(Path(sys.argv[1]), stale_after=3600):\n"
        "    print('got', flush=True); sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "got"
    return p


def test_a_stalled_run_stops_at_its_limit_and_the_next_one_finishes(env, capsys):
    env.add("--max-hours", "0.0003")  # about a second
    env.transport.stall_candles = True  # answers that never come
    assert main(["schedule", "run", "nifty"]) == exitcodes.NETWORK
    err = capsys.readouterr().err
    assert "did not finish within its limit of 1.08 s" in err
    assert env.sleeps == []  # no retry after the limit
    (msg,) = env.mails()
    assert "API unreachable" in msg["Subject"]
    env.transport.stall_candles = False
    env.add()  # the default limit (12 h): time enough for the whole selection
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert_exact(env)


def test_mail_failure_is_a_warning_not_a_failed_run(env, capsys):
    env.add()
    env.server.__exit__()  # nobody listens any more
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert "warning: e-mail not sent: cannot reach the SMTP server" in capsys.readouterr().err


def test_retry_delay_doubles_and_is_capped():
    s = Schedule("n", ["NIFTY"], ["16:30"], retry_delay=600)
    assert [retry_delay(s, n) for n in (1, 2, 3, 4)] == [600, 1200, 1800, 1800]


def test_report_mail_redacts_known_secrets():
    from expirytrack_desktop.notify import SmtpConfig, compose_report

    s = Schedule("n", ["NIFTY"], ["16:30"])
    r = RunReport(s, __import__("datetime").datetime.now().astimezone(), reason=StopReason.OK)
    r.attempts.append(
        Attempt(1, StopReason.FAILED_ITEMS, 5, Counters(windows_failed=1), "x", ("tok-ABCDEF1234",))
    )
    cfg = SmtpConfig("127.0.0.1", 25, "none", "", "a@example.com")
    msg = compose_report(r, cfg, ["b@example.com"], secrets=["tok-ABCDEF1234", None])
    assert "tok-ABCDEF1234" not in msg.as_string() and "[redacted]" in msg.get_content()
