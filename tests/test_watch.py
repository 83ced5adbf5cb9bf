"""Keep-complete watchlists through ``cli.main.main`` against the simulator (demo mode, the
simulator's master and API through runtime.override) on a real SQLite file: persistence,
add/list/remove, a run collecting exactly what is missing, a second run fetching no candle,
an expiry that appears later, an underlying the master stopped listing, and bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from expirytrack_desktop import runtime
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import Selection
from expirytrack_desktop.collect.watchlist import (
    completeness,
    parse_strikes,
    selection_for,
    watch_keys,
)
from expirytrack_desktop.sandbox import Market, SimulatorApp
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.underlyings import UniverseEntry
from expirytrack_desktop.store.watchlists import (
    Watchlist,
    WatchlistError,
    delete_watchlist,
    get_watchlist,
    list_watchlists,
    record_run,
    save_watchlist,
)

TODAY = date(2025, 11, 20)
SYMBOLS = ("NIFTY", "RELIANCE", "M&M")


async def _no_sleep(_s: float) -> None:
    return None


def make_app(today: date = TODAY) -> SimulatorApp:
    market = Market(seed=5, today=today, underlyings=SYMBOLS, strikes_per_side=2, stocks=True)
    return SimulatorApp(market, rate_limit=None)


def key_of(app: SimulatorApp, symbol: str) -> str:
    return next(u.key for u in app.market.underlyings() if u.symbol == symbol)


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "watch.sqlite3"
    monkeypatch.setenv("EXPIRYTRACK_DB", str(path))
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    return path


def serving(app: SimulatorApp):
    return runtime.override(
        demo_app=app,
        transport=app.transport(),
        client_kwargs={"sleep": _no_sleep, "max_attempts": 2},
        ledger_path=False,
        busy_timeout_ms=100,
    )


def run(*argv: str) -> int:
    import os

    return main([*argv, "--demo", "--db", os.environ["EXPIRYTRACK_DB"]])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def candle_requests(app: SimulatorApp) -> int:
    return app.stats.by_endpoint["historical_candle"]


# ---------------------------------------------------------------- persistence


def test_watchlists_persist_in_the_database(tmp_path):
    path = tmp_path / "p.sqlite3"
    wl = Watchlist("idx", "indices", (), ("CE", "PE"), "10%", "day", 2)
    with open_database(path) as db:
        assert save_watchlist(db, wl) is False
        with pytest.raises(WatchlistError, match="exists already"):
            save_watchlist(db, wl)
        other = Watchlist("mine", "list", ("NSE_INDEX|Nifty 50",))
        save_watchlist(db, other)
        assert save_watchlist(db, other, replace_existing=True) is True
    with open_database(path) as db:  # a new connection reads back the same
        got = list_watchlists(db)
        assert [w.name for w in got] == ["idx", "mine"]
        assert got[0].types == ("CE", "PE") and got[0].strikes == "10%" and got[0].months == 2
        assert got[0].created_at
        record_run(db, "mine", {"state": "completed", "summary": "ok"})
        mine = get_watchlist(db, "mine")
        assert (
            mine is not None
            and mine.last_run_at
            and mine.last_result
            == {
                "state": "completed",
                "summary": "ok",
            }
        )
        delete_watchlist(db, "idx")
        with pytest.raises(WatchlistError, match="no watchlist named 'idx'"):
            delete_watchlist(db, "idx")
        assert get_watchlist(db, "idx") is None


def test_parse_strikes():
    assert parse_strikes(None) is None and parse_strikes("all") is None
    assert parse_strikes("5") == "5" and parse_strikes("7.5%") == "7.5%"
    for bad in ("0", "-3", "x", "0%", "5 %", "1000"):
        with pytest.raises(ValueError, match="bad --strikes"):
            parse_strikes(bad)


# ---------------------------------------------------------------- add / list / remove / run


def test_add_run_list_remove_end_to_end(db_path, capsys):
    app = make_app()
    with serving(app):
        assert run("watch", "add", "core", "-i", "nifty", "-i", "RELIANCE",
                   "--interval", "day", "--months", "1") == exitcodes.OK  # fmt: skip
        out = capsys.readouterr().out
        assert "Watchlist core saved" in out
        assert run("watch", "list") == exitcodes.OK
        out = capsys.readouterr().out
        assert "core:" in out and "expiries complete 0/0" in out and "never run" in out

        assert run("watch", "run", "core") == exitcodes.OK, capsys.readouterr().err
        capsys.readouterr()
        first = candle_requests(app)
        assert first > 0
        nifty, reliance = key_of(app, "NIFTY"), key_of(app, "RELIANCE")
        wanted = 0
        with open_database(db_path) as db:
            for key in (nifty, reliance):
                for exp in app.market.expiries(key):
                    contracts = db.contracts_for(key, exp)
                    n = len(
                        app.market.option_contracts(key, exp)
                        + app.market.future_contracts(key, exp)
                    )
                    assert len(contracts) == n  # every offered expiry, every contract
                    wanted += n
            wl = get_watchlist(db, "core")
            assert wl is not None and wl.last_result and wl.last_result["exit_code"] == 0
            keys, notes = watch_keys(wl, db.universe())
            assert keys == [nifty, reliance] and notes == []
            c = completeness(db, wl, keys, today=TODAY)
            total = len(app.market.expiries(nifty)) + len(app.market.expiries(reliance))
            assert (c.complete, c.total) == (total, total)
        # With a span cap above a month, one day-interval window per contract: exactly those.
        assert first == wanted

        # The second run finds nothing missing: no candle request, only the expiry lists.
        before = app.stats.requests
        assert run("watch", "run", "core") == exitcodes.OK
        assert candle_requests(app) == first
        assert app.stats.requests - before == 2
        assert f"Watchlist core: {total}/{total} expiries complete\n" in capsys.readouterr().out
        assert run("watch", "list") == exitcodes.OK
        out = capsys.readouterr().out
        assert f"expiries complete {total}/{total}" in out and "completed, 0 windows" in out

        assert run("watch", "remove", "core") == exitcodes.OK
        assert run("watch", "list") == exitcodes.OK
        assert "No watchlists yet" in capsys.readouterr().out


def test_an_expiry_that_appears_later_is_collected_by_the_next_run(db_path, capsys):
    early = make_app()
    with serving(early):
        assert run("watch", "add", "n", "-i", "NIFTY", "--types", "FUT",
                   "--interval", "day", "--months", "1") == exitcodes.OK  # fmt: skip
        assert run("watch", "run", "n") == exitcodes.OK
    nifty = key_of(early, "NIFTY")
    later = make_app(TODAY + timedelta(days=40))
    new = sorted(set(later.market.expiries(nifty)) - set(early.market.expiries(nifty)))
    assert new  # the later market offers expiries the first run could not see
    with serving(later):
        assert run("watch", "run", "n") == exitcodes.OK, capsys.readouterr().err
    # Exactly the new expiries' futures were fetched (one day window each).
    assert candle_requests(later) == sum(len(later.market.future_contracts(nifty, e)) for e in new)
    with open_database(db_path) as db:
        for e in new:
            assert len(db.contracts_for(nifty, e, ("FUT",))) == len(
                later.market.future_contracts(nifty, e)
            )


def test_all_stocks_follows_the_master_and_a_dropped_underlying_is_kept(db_path, capsys):
    app = make_app()
    mm = key_of(app, "M&M")
    with serving(app):
        assert run("watch", "add", "stocks", "--all-stocks", "--types", "FUT",
                   "--interval", "day", "--months", "1") == exitcodes.OK  # fmt: skip
        assert run("watch", "add", "mm", "-i", "M&M", "--types", "FUT",
                   "--interval", "day", "--months", "1") == exitcodes.OK  # fmt: skip
        capsys.readouterr()
        # The next master no longer lists M&M (a day later than the cached one).
        with open_database(db_path) as db:
            info = db.universe_info()
            assert info is not None
            entries = [
                UniverseEntry(r.instrument_key, r.symbol, r.name, r.underlying_type,
                              r.fo_segment, r.lot_size)
                for r in db.universe() if r.instrument_key != mm
            ]  # fmt: skip
            db.replace_universe(entries, info.master_date + timedelta(days=1), "test")
            stocks = get_watchlist(db, "stocks")
            assert stocks is not None
            keys, notes = watch_keys(stocks, db.universe())
            # "all stocks" = the stocks in F&O now, and those that left it within the retention
            assert keys == [key_of(app, "RELIANCE"), mm]
            assert notes and "left F&O" in notes[0] and "M&M" in notes[0]
            gone = [r for r in db.universe() if r.instrument_key != mm]
            assert watch_keys(stocks, gone)[0] == [key_of(app, "RELIANCE")]
        assert run("watch", "run", "mm") == exitcodes.OK
        out = capsys.readouterr().out
        assert "M&M is no longer listed by the instrument master" in out and "kept" in out
        with open_database(db_path) as db:
            wl = get_watchlist(db, "mm")
            assert wl is not None and wl.keys == (mm,)  # kept, not dropped
            assert any("no longer listed" in n for n in wl.last_result["notes"])
            assert db.contracts_for(mm, app.market.expiries(mm)[-1], ("FUT",))
            # Half a year later M&M's expired contracts are gone: "all stocks" lets it go.
            later = info.master_date + timedelta(days=200)
            db.replace_universe(entries, later, "test")
            stocks = get_watchlist(db, "stocks")
            assert stocks is not None
            assert watch_keys(stocks, db.universe()) == ([key_of(app, "RELIANCE")], [])


def test_bad_input_one_error_line_and_exit_2(db_path, capsys):
    app = make_app()
    with serving(app):
        cases = [
            (["watch", "add", "x", "-i", "RELIANC"], "unknown instrument 'RELIANC'"),
            (["watch", "add", "bad name", "-i", "NIFTY"], "bad watchlist name"),
            (["watch", "add", "x", "-i", "NIFTY", "--types", "XX"], "contract types"),
            (["watch", "add", "x", "-i", "NIFTY", "--months", "0"], "months must be"),
            (["watch", "run", "nope"], "no watchlist named 'nope'"),
            (["watch", "remove", "nope"], "no watchlist named 'nope'"),
        ]
        for argv, text in cases:
            assert run(*argv) == exitcodes.BAD_INPUT, argv
            lines = error_lines(capsys.readouterr().err)
            assert len(lines) == 1 and text in lines[0], (argv, lines)
        assert run("watch", "add", "x", "-i", "NIFTY") == exitcodes.OK
        assert run("watch", "add", "x", "-i", "RELIANCE") == exitcodes.BAD_INPUT
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "exists already" in lines[0] and "--replace" in lines[0]
        assert run("watch", "add", "x", "-i", "RELIANCE", "--replace") == exitcodes.OK
        with open_database(db_path) as db:
            wl = get_watchlist(db, "x")
            assert wl is not None and wl.keys == (key_of(app, "RELIANCE"),)
        assert run("watch", "run", "x", "--concurrency", "0") == exitcodes.BAD_INPUT


def test_selection_for_is_the_collect_selection():
    wl = Watchlist("w", "list", ("NSE_INDEX|Nifty 50",), ("FUT",), None, "day", 2)
    assert selection_for(wl, wl.keys) == Selection(["NIFTY"], None, "day", 2, ["FUT"])


def test_watch_schedule_runs_the_watchlist(db_path, capsys):
    from expirytrack_desktop.schedule import Schedule

    app = make_app()
    with serving(app):
        assert run("watch", "add", "nf", "-i", "NIFTY", "--types", "FUT",
                   "--interval", "day", "--months", "1") == exitcodes.OK  # fmt: skip
        assert run("watch", "schedule", "nf", "--at", "16:30", "--no-install") == exitcodes.OK
        out = capsys.readouterr().out
        assert "Schedule watch-nf runs watchlist nf daily at 16:30" in out
        assert run("watch", "schedule", "nope", "--at", "16:30") == exitcodes.BAD_INPUT
        assert len(error_lines(capsys.readouterr().err)) == 1
        assert run("watch", "list") == exitcodes.OK
        assert "next run 20" in capsys.readouterr().out  # the schedule's next run, dated
        assert main(["schedule", "run", "watch-nf"]) == exitcodes.OK, capsys.readouterr().err
        capsys.readouterr()
    nifty = key_of(app, "NIFTY")
    with open_database(db_path) as db:
        for e in app.market.expiries(nifty):
            assert len(db.contracts_for(nifty, e, ("FUT",))) == len(
                app.market.future_contracts(nifty, e)
            )
        wl = get_watchlist(db, "nf")
        assert wl is not None and wl.last_result is not None
        assert wl.last_result["summary"].startswith("scheduled: watch-nf: complete")
    # A schedule stored before watchlists existed still loads (no 'watchlist' key).
    old = Schedule.from_json({"name": "old", "instruments": ["NIFTY"], "times": ["09:00"]})
    assert old.watchlist is None and old.validate().what_text().startswith("NIFTY")
