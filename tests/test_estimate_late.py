"""Before a run: expiries the plan would reach only after Upstox deletes them are warned about.

The plan is walked as a run fetches it (lists first, then windows oldest expiry first) through
the limiter's rate windows; an expiry whose last window lands after its last fetchable day
(the vanish rule of collect/atrisk.py) is listed in the estimate.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import Selection
from expirytrack_desktop.collect.atrisk import last_day, retention_days
from expirytrack_desktop.collect.deadline_check import ExpiryLoad, finish_times, late_expiries
from expirytrack_desktop.collect.planning import plan_expiry
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from tests.collect_helpers import NIFTY, make_app, make_client, make_collector, make_db

HOURLY = [(1, 3600.0)]  # one request an hour: the n-th answer lands (n - 1) hours from now
RETENTION = retention_days(None)[0]


def hourly(total: int, marks):
    return finish_times(total, marks, HOURLY, concurrency=1, latency=0.0, margin=0.0)


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=IST)


def late(loads, now, before=0):
    found, _ = late_expiries(
        loads, before=before, finish=hourly, now=now, edges={}, name=lambda k: k.split("|")[-1]
    )
    return found


def test_finish_times_follow_the_rate_window():
    assert hourly(10, [1, 5, 10]) == [0.0, 4 * 3600.0, 9 * 3600.0]


def test_the_boundary_is_the_last_fetchable_day():
    exp = date(2025, 6, 26)
    last = last_day(exp, RETENTION)  # vanishes the day after
    loads = [ExpiryLoad(NIFTY, exp, exp, 10)]  # its 10th request lands 9 h after the first
    assert late(loads, at(last, 14, 59, 59)) == []  # 23:59:59 on its last day: in time
    [one] = late(loads, at(last, 15))  # 00:00 the next day: too late
    assert (one.expiry, one.vanishes, one.reaches) == (
        exp,
        last + timedelta(1),
        last + timedelta(1),
    )
    assert one.describe() == (
        f"Nifty 50 2025-06-26: vanishes {one.vanishes}, this plan reaches it about "
        f"{one.reaches} — collect it on its own first / narrow the selection"
    )
    assert one.vanishes == date(2025, 12, 26)  # the example
    assert late(loads, at(last, 13, 59, 59), before=1) == []  # a list sent first: 1 h more
    assert late(loads, at(last, 14), before=1) != []


def test_work_with_an_earlier_deadline_makes_a_later_one_late():
    soon, later = date(2025, 6, 19), date(2025, 6, 26)
    now = at(last_day(later, RETENTION) - timedelta(days=1), 0)  # 2 days left for `later`
    alone = [ExpiryLoad(NIFTY, later, later, 30)]
    assert late(alone, now) == []
    big = ExpiryLoad("NSE_INDEX|Nifty Bank", soon, soon, 40)  # vanishes earlier: fetched first
    found = late([*alone, big], now)  # big itself vanished already: not reported
    assert [(f.instrument_key, f.expiry) for f in found] == [(NIFTY, later)]
    gone = last_day(soon, RETENTION) < now.date()
    assert gone


def test_expiries_not_known_yet_take_their_place_but_are_not_reported():
    exp = date(2025, 6, 26)
    now = at(last_day(exp, RETENTION), 0)
    loads = [ExpiryLoad(NIFTY, None, exp - timedelta(days=1), 30), ExpiryLoad(NIFTY, exp, exp, 1)]
    assert [f.expiry for f in late(loads, now)] == [exp]


async def _known_contracts(app, db, expiries):
    client = make_client(app)
    try:
        await db.run(db.upsert_expiries, NIFTY, app.market.expiries(NIFTY))
        for exp in expiries:
            got = list(await client.get_option_contracts(NIFTY, exp))
            got += list(await client.get_future_contracts(NIFTY, exp))
            await db.run(db.store_contracts, NIFTY, exp, got, mark_fetched=True)
    finally:
        await client.aclose()


async def test_the_estimate_warns_about_an_expiry_vanishing_tomorrow(tmp_path):
    app = make_app()
    db = make_db(tmp_path)
    e0, e1 = app.market.expiries(NIFTY)[:2]
    await _known_contracts(app, db, [e0, e1])
    sel = Selection(["NIFTY"], [e0, e1], months=3)
    probe = make_client(app)
    span = (await make_collector(db, probe).caps.policy()).cap_days("1minute")
    await probe.aclose()
    n0 = len((await db.run(plan_expiry, db, NIFTY, e0, sel, span)).tasks)
    n1 = len((await db.run(plan_expiry, db, NIFTY, e1, sel, span)).tasks)
    days = retention_days((await db.run(db.retention_edges)).get(NIFTY))[0]
    now = at(last_day(e0, days), 16)  # 8 hours left for e0, 7 days more for e1
    assert n0 + 1 > 9 and n0 + n1 + 1 < 7 * 24  # hourly: e0 cannot make it, e1 can

    async def estimate(spec: str):
        client = UpstoxClient(
            "http://sim.test",
            access_token=DEMO_ACCESS_TOKEN,
            limiter=RateLimiter(RateLimitSpec.parse(spec)),
            transport=app.transport(),
        )
        try:
            col = make_collector(db, client, concurrency=1)
            return await col.estimate(sel, now=now)
        finally:
            await client.aclose()

    try:
        slow = await estimate("1/3600")
        assert [(x.expiry, x.vanishes) for x in slow.late] == [
            (e0, last_day(e0, days) + timedelta(1))
        ]
        assert slow.late[0].name == "NIFTY" and slow.warnings[0].startswith(f"NIFTY {e0}")
        fast = await estimate("1/600")  # the same plan at six an hour: in time
        assert fast.late == () and fast.warnings == ()
    finally:
        db.close()


def test_cli_estimate_prints_the_warning(monkeypatch, tmp_path, capsys):
    from expirytrack_desktop import runtime

    today = datetime.now(IST).date()
    soon = today - timedelta(days=RETENTION)  # its last fetchable day is today
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
    monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "cli.sqlite3"))
    app = make_app()
    args = ["collect", "-i", "NIFTY", "-e", soon.isoformat(), "--months", "1", "--estimate-only"]
    with runtime.override(transport=app.transport(), ledger_path=False):
        monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "1/86400")  # one request a day
        assert main(args) == exitcodes.OK
        out = capsys.readouterr().out
        assert f"WARNING: NIFTY {soon}: vanishes {today + timedelta(1)}, this plan reaches" in out
        monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
        assert main(args) == exitcodes.OK
        assert "WARNING" not in capsys.readouterr().out
