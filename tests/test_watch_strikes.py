"""The strike filter of watchlists: the ladder arithmetic, the price near expiry (own future,
the next monthly future for a weekly), and a real run against the simulator whose options
are exactly the kept strikes, with the request count against all strikes."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.collect import Selection
from expirytrack_desktop.collect.strikes import keep_strikes, price_near_expiry
from expirytrack_desktop.sandbox import Market, SimulatorApp
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import IST
from tests.collect_helpers import make_client, make_collector
from tests.test_watch import TODAY, candle_requests, db_path, key_of, run, serving

__all__ = ["db_path"]  # the fixture, shared with test_watch

STOCKS = ("RELIANCE", "M&M")


def test_keep_strikes_on_the_ladder():
    ladder = [95.0, 97.5, 100.0, 102.5, 105.0, 107.5, 110.0]
    assert keep_strikes(ladder, "1", 101.0) == {97.5, 100.0, 102.5}
    assert keep_strikes(ladder, "1", 101.25) == {97.5, 100.0, 102.5}  # a tie: the lower
    assert keep_strikes(ladder, "2", 94.0) == {95.0, 97.5, 100.0}  # the ladder's end
    assert keep_strikes(ladder, "1", 200.0) == {107.5, 110.0}
    assert keep_strikes(ladder, "5%", 100.0) == {95.0, 97.5, 100.0, 102.5, 105.0}
    assert keep_strikes(ladder, "2.5%", 100.0) == {97.5, 100.0, 102.5}
    assert keep_strikes([], "3", 100.0) == set()
    with pytest.raises(ValueError, match="bad strike filter"):
        Selection(["NIFTY"], strikes="0%")
    sel = Selection(["NIFTY"], None, "day", 1, strikes="3")
    assert sel.to_params()["strikes"] == "3" and Selection.from_params(sel.to_params()) == sel
    assert "strikes" not in Selection(["NIFTY"]).to_params()  # earlier jobs still match


def _last_close(db, contract, day: date) -> float:
    end = datetime(day.year, day.month, day.day, tzinfo=IST) + timedelta(days=1)
    rows = [r for r in db.candle_rows(contract.expired_key, "day") if r[0] < end.timestamp()]
    return rows[-1][4]


async def test_price_near_expiry_own_future_and_weekly(tmp_path):
    market = Market(seed=3, today=TODAY, underlyings=("NIFTY",), strikes_per_side=1)
    app = SimulatorApp(market, rate_limit=None)
    nifty = key_of(app, "NIFTY")
    exps = market.expiries(nifty)[-8:]
    with open_database(tmp_path / "p.sqlite3") as db:
        job = await make_collector(db, make_client(app)).run(
            Selection([nifty], exps, "day", 1, ["FUT"])
        )
        assert job.reason.value == "ok", job.message
        monthly = [e for e in exps if db.contracts_for(nifty, e, ("FUT",))]
        weekly = [e for e in exps if e not in monthly and e < monthly[-1]]
        assert monthly and weekly
        m = monthly[-1]
        fut = db.contracts_for(nifty, m, ("FUT",))[0]
        price, source = price_near_expiry(db, nifty, m)
        assert price == _last_close(db, fut, m) and source.startswith("future")
        w = weekly[-1]
        nxt = min(e for e in monthly if e > w)
        price, source = price_near_expiry(db, nifty, w)
        nfut = db.contracts_for(nifty, nxt, ("FUT",))[0]
        assert price == _last_close(db, nfut, w) and source.startswith("monthly future")
        # An expiry with no future stored at or after it: unknown, and why.
        last_weekly = [e for e in exps if e > monthly[-1]]
        if last_weekly:
            assert price_near_expiry(db, nifty, last_weekly[-1])[0] is None


def stock_app() -> SimulatorApp:
    market = Market(seed=5, today=TODAY, underlyings=STOCKS, stocks=True)  # 10 strikes a side
    return SimulatorApp(market, rate_limit=None)


@pytest.mark.parametrize("spec", ["2", "5%"])
def test_strike_filter_run_fetches_only_the_kept_strikes(
    spec, db_path, capsys, monkeypatch, tmp_path
):
    app = stock_app()
    key = key_of(app, "RELIANCE")
    with serving(app):
        assert run("watch", "add", "f", "-i", "RELIANCE", "--strikes", spec,
                   "--interval", "day", "--months", "1") == exitcodes.OK  # fmt: skip
        assert run("watch", "run", "f") == exitcodes.OK, capsys.readouterr().err
        filtered = candle_requests(app)
        assert run("watch", "run", "f") == exitcodes.OK  # complete: nothing fetched again
        assert candle_requests(app) == filtered
        assert run("watch", "list") == exitcodes.OK
        n = len(app.market.expiries(key))
        assert f"expiries complete {n}/{n}" in capsys.readouterr().out
    expected = 0
    with open_database(db_path) as db:
        for e in app.market.expiries(key):
            price, _ = price_near_expiry(db, key, e)
            assert price is not None
            rows = db.contracts_for(key, e)
            strikes = [r.strike_price for r in rows if r.contract_type != "FUT"]
            kept = keep_strikes(strikes, spec, price)
            assert 0 < len(kept) < len(set(strikes))
            for r in rows:
                fetched = bool(db.candle_rows(r.expired_key, "day")) or any(
                    w.state != "failed" for w in db.windows_for([r.id], "day").get(r.id, [])
                )
                wanted = r.contract_type == "FUT" or r.strike_price in kept
                assert fetched == wanted, (e, r.trading_symbol)
                expected += wanted
    assert filtered == expected  # one day window per kept contract, nothing else

    # At risk: the complete filtered watchlist is not reported, though strikes were left out
    # (all strikes of its oldest expiries, chosen directly, are incomplete and vanish soon).
    from expirytrack_desktop.collect.atrisk import Chosen, at_risk
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.schedule.manage import chosen_everywhere

    with open_database(db_path) as db:
        chosen = chosen_everywhere(db, AppPaths.under(tmp_path / "app"))
        assert at_risk(db, chosen, today=TODAY, within_days=60) == []
        assert at_risk(db, [Chosen(key)], today=TODAY, within_days=60)

    # All strikes, for the ratio (a fresh database and simulator).
    monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "all.sqlite3"))
    everything = stock_app()
    with serving(everything):
        assert run("watch", "add", "a", "-i", "RELIANCE", "--interval", "day",
                   "--months", "1") == exitcodes.OK  # fmt: skip
        assert run("watch", "run", "a") == exitcodes.OK
    ratio = candle_requests(everything) / filtered
    print(f"strikes {spec}: {filtered} vs {candle_requests(everything)} candle requests "
          f"(all strikes), {ratio:.1f}x fewer")  # fmt: skip
    assert ratio > 2
