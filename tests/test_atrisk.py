"""At risk: chosen expiries that are not complete and vanish from Upstox within N days, with
their last day from the retention edge the API's expiries list shows (oldest expiry offered)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from expirytrack_desktop import runtime
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import Selection
from expirytrack_desktop.collect.atrisk import (
    DEFAULT_RETENTION_DAYS,
    Chosen,
    at_risk,
    chosen_from_jobs,
    retention_days,
)
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import IST
from tests.collect_helpers import NIFTY, make_client, make_collector

TODAY = date(2025, 10, 1)


def _clock() -> datetime:
    return datetime(2025, 10, 1, 6, 0, tzinfo=UTC)  # 11:30 IST on TODAY


@pytest.fixture
def app() -> SimulatorApp:
    market = Market(seed=11, today=TODAY, underlyings=("NIFTY",), strikes_per_side=1)
    return SimulatorApp(market, rate_limit=None)


async def test_edge_and_at_risk_around_it(app, tmp_path):
    exps = app.market.expiries(NIFTY)
    oldest = exps[0]
    done = exps[:2]
    with open_database(tmp_path / "r.sqlite3", clock=_clock) as db:
        collector = make_collector(db, make_client(app))
        job = await collector.run(Selection([NIFTY], done, "day", 1))
        assert job.reason.value == "ok", job.message
        edges = db.retention_edges()
        assert edges == {NIFTY: (TODAY, oldest)}
        retention, learned = retention_days(edges[NIFTY])
        assert learned and retention == (TODAY - oldest).days
        # What the job chose is complete: nothing at risk.
        assert at_risk(db, chosen_from_jobs(db.list_jobs()), today=TODAY) == []
        # Everything NIFTY offers, chosen: the uncollected ones whose last day is near.
        found = at_risk(db, [Chosen(NIFTY)], today=TODAY, within_days=14)
        expected = [e for e in exps if e not in done and 0 <= (e - oldest).days <= 14]
        assert expected and [a.expiry for a in found] == expected
        for a in found:
            assert a.last_day == a.expiry + timedelta(days=retention)
            assert a.days_left == (a.last_day - TODAY).days
            assert a.state == "no_data" and a.edge_known
        # The window's edge: a day later the oldest left is one day closer.
        later = at_risk(db, [Chosen(NIFTY)], today=TODAY + timedelta(days=1), within_days=14)
        assert [a.days_left for a in later] == [a.days_left - 1 for a in found][: len(later)]
        # Gone already (last day passed) is not "at risk": it cannot be saved.
        far = TODAY + timedelta(days=400)
        assert at_risk(db, [Chosen(NIFTY)], today=far, within_days=14) == []
        # Only the listed expiries of a selection count.
        one = at_risk(db, [Chosen(NIFTY, (found[-1].expiry,))], today=TODAY, within_days=14)
        assert [a.expiry for a in one] == [found[-1].expiry]
        assert at_risk(db, [Chosen(NIFTY)], today=TODAY, within_days=0) == []


def test_retention_defaults_when_the_edge_is_unknown_or_implausible():
    assert retention_days(None) == (DEFAULT_RETENTION_DAYS, False)
    assert retention_days((date(2025, 10, 1), date(2025, 9, 25))) == (DEFAULT_RETENTION_DAYS, False)
    assert retention_days((date(2025, 10, 1), date(2025, 4, 3))) == (181, True)


def test_status_at_risk_cli(monkeypatch, tmp_path, capsys):
    today = datetime.now(IST).date()
    market = Market(seed=11, today=today, underlyings=("NIFTY",), strikes_per_side=1)
    app = SimulatorApp(market, rate_limit=None)
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "cli.sqlite3"))
    oldest = market.expiries(NIFTY)[0]
    with runtime.override(transport=app.transport(), ledger_path=False):
        args = ["collect", "-i", "NIFTY", "-e", oldest.isoformat(), "--interval", "day"]
        assert main(args) == exitcodes.OK
        capsys.readouterr()
        assert main(["status", "--at-risk"]) == exitcodes.OK
        assert "Nothing at risk" in capsys.readouterr().out  # the job's one expiry is complete
        add = ["schedule", "add", "-i", "NIFTY", "--all-expiries", "--at", "18:00"]
        assert main([*add, "--no-install"]) == exitcodes.OK
        capsys.readouterr()
        assert main(["status", "--at-risk", "--within", "14"]) == exitcodes.OK
        out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("NIFTY ")]
    retention = (today - oldest).days
    expected = [
        e
        for e in market.expiries(NIFTY)[1:]
        if 0 <= (e + timedelta(days=retention) - today).days <= 14
    ]
    assert [line.split()[1] for line in lines] == [e.isoformat() for e in expected]
    n = len(expected)
    said = (
        "expiry is not complete and vanishes" if n == 1 else "expiries are not complete and vanish"
    )
    assert f"At risk: {n} chosen {said} from Upstox within 14 days" in out
    first = lines[0].split()
    assert first[2] == (expected[0] + timedelta(days=retention)).isoformat()
    assert first[4] == "no_data"
    assert main(["status", "--at-risk", "--within", "-1"]) == exitcodes.BAD_INPUT


class _FailCandles(httpx.AsyncBaseTransport):
    """The simulator, but every candle request answers HTTP 500."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "historical-candle" in request.url.path:
            body = {"status": "error", "errors": [{"errorCode": "UDAPI100500", "message": "x"}]}
            return httpx.Response(500, json=body)
        return await self.inner.handle_async_request(request)


def test_a_scheduled_run_that_leaves_an_expiry_at_risk_says_so_by_mail(
    monkeypatch, tmp_path, memory_keyring, capsys
):
    from expirytrack_desktop.notify import SMTP_PASSWORD
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.schedule import hooks
    from expirytrack_desktop.settings import Settings
    from tests.smtp_helper import SmtpServer

    today = datetime.now(IST).date()
    market = Market(seed=11, today=today, underlyings=("NIFTY",), strikes_per_side=1)
    app = SimulatorApp(market, rate_limit=None)
    oldest = market.expiries(NIFTY)[0]
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "s.sqlite3"))

    async def no_sleep(_s: float) -> None:
        return None

    with SmtpServer() as server:
        Settings(
            smtp_host="127.0.0.1", smtp_port=server.port, smtp_security="none",
            smtp_user="mailer", smtp_from="et@example.com",
        ).save(AppPaths.default().settings_path)  # fmt: skip
        memory_keyring.set_password("ExpiryTrack", SMTP_PASSWORD, "pw-123456")
        with (
            runtime.override(
                transport=_FailCandles(app.transport()),
                client_kwargs={"sleep": no_sleep, "max_attempts": 1},
                ledger_path=False,
            ),
            hooks.override(sleep=no_sleep),
        ):
            args = ["schedule", "add", "-i", "NIFTY", "-e", oldest.isoformat(), "--at", "16:30",
                    "--name", "old", "--no-install", "--retries", "0", "--interval", "day",
                    "--notify-email", "me@example.com"]  # fmt: skip
            assert main(args) == exitcodes.OK
            assert main(["schedule", "run", "old"]) == exitcodes.FAILED_ITEMS
        (msg,) = server.got.messages
    err = capsys.readouterr().err
    assert (
        f"old: 1 expiries still incomplete vanish from Upstox within 14 days (first: NIFTY {oldest}"
        in err
    )
    assert msg["Subject"].endswith(", 1 at risk")
    body = msg.get_content()
    retention = (today - oldest).days
    last = oldest + timedelta(days=retention)
    assert "At risk: 1 expiry of this schedule is not complete and vanishes" in body
    assert f"  - NIFTY {oldest.isoformat()}: last day {last.isoformat()} (0 days left)" in body
