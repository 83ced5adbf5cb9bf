"""Underlyings from the instrument master, end to end: download from the simulator on a real
loopback port, once a day, offline fallback to the cached copy, refusal of a bad master,
underlyings that left F&O, symbol resolution, and `expirytrack underlyings` / `collect -i`."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect.universe import (
    ResolveError,
    load_universe,
    needs_universe,
    refresh_universe,
    resolve_many,
    resolve_one,
)
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, SimulatorApp, serve
from expirytrack_desktop.sandbox.market import Market
from expirytrack_desktop.sandbox.master import master_gzip, master_rows
from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH, Settings
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.underlyings import UniverseRow

TODAY = date(2025, 11, 20)


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=TODAY, stocks=True, strikes_per_side=2)


@pytest.fixture(scope="module")
def master_bytes(market) -> bytes:
    return master_gzip(market)


@pytest.fixture
def app(market) -> SimulatorApp:
    return SimulatorApp(market, rate_limit=None)


@pytest.fixture
def server(app, monkeypatch, tmp_path):
    """The simulator on 127.0.0.1; the CLI's database and master URL point at it."""
    with serve(app) as url:
        monkeypatch.setenv("EXPIRYTRACK_INSTRUMENTS_URL", url + INSTRUMENT_MASTER_PATH)
        monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "u.sqlite3"))
        monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
        yield url


def _closed_port_url() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}{INSTRUMENT_MASTER_PATH}"


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def key_of(market: Market, symbol: str) -> str:
    return next(u.key for u in market.underlyings() if u.symbol == symbol)


# ---------------------------------------------------------------- download, CLI


def test_underlyings_downloads_once_a_day_over_loopback(server, app, market, capsys, tmp_path):
    assert main(["underlyings", "--search", "bajaj"]) == exitcodes.OK
    out, err = capsys.readouterr()
    assert "Instrument master of " in err and "231 underlyings in F&O" in err
    lines = _lines(out)
    assert [line.split()[0] for line in lines] == [
        "BAJAJ-AUTO", "BAJAJFINSV", "BAJAJHLDNG", "BAJFINANCE",
    ]  # fmt: skip
    first = lines[0].split()
    auto = market.underlying(key_of(market, "BAJAJ-AUTO"))
    assert first[-2:] == [auto.key, str(auto.lot_size)] and "BAJAJ AUTO LIMITED" in lines[0]
    assert app.stats.by_endpoint["instrument_master"] == 1

    assert main(["underlyings", "--indices"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert [line.split()[0] for line in _lines(out)] == [
        "BANKEX", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTY", "NIFTYNXT50", "SENSEX",
    ]  # fmt: skip
    assert "NSE_INDEX|Nifty 50" in out and "India VIX" not in out  # no F&O, not listed
    assert main(["underlyings", "--stocks"]) == exitcodes.OK
    stocks = _lines(capsys.readouterr().out)
    assert len(stocks) >= 200 and not any("NSE_INDEX" in s for s in stocks)
    assert not any(s.split()[0] in ("CRUDEOIL", "SUNDARMFIN", "USDINR") for s in stocks)
    assert app.stats.by_endpoint["instrument_master"] == 1  # cached for the day
    assert main(["underlyings", "--refresh", "--search", "M&M"]) == exitcodes.OK
    assert [line.split()[0] for line in _lines(capsys.readouterr().out)] == ["M&M", "M&MFIN"]
    assert app.stats.by_endpoint["instrument_master"] == 2
    assert "authorization" not in str(app.stats)  # nothing secret involved either way


def test_collect_by_symbol_over_loopback(server, app, market, capsys, tmp_path):
    key = key_of(market, "M&M")
    exp = market.expiries(key)[-1].isoformat()
    code = main(
        ["collect", "--api-base", server, "-i", "m&m", "-e", exp, "--months", "1",
         "--rate-limit", "1000/1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == exitcodes.OK, err
    from expirytrack_desktop.collect import target_range

    lo, hi = target_range(date.fromisoformat(exp), 1)
    with open_database(tmp_path / "u.sqlite3") as db:
        got = db.execute("SELECT DISTINCT u.instrument_key FROM underlying u")
        assert [r[0] for r in got] == [key]
        n = db.execute("SELECT count(*) FROM candle")[0][0]
        expected = sum(
            len(market.candle_rows(c.expired_key, "1minute", lo, hi))
            for c in db.contracts_for(key, date.fromisoformat(exp))
        )
    assert n == expected > 0

    # verify takes the same symbols as collect (the master is cached for the day by now)
    assert main(["verify", "-i", "M&M", "-e", exp]) == exitcodes.OK
    out = capsys.readouterr().out
    assert f"scope: {key} {exp}" in out and "11 contracts" in out
    assert "Result: no problems found." in out
    assert main(["verify", "-i", "RELIANC"]) == exitcodes.BAD_INPUT
    assert "did you mean RELIANCE" in capsys.readouterr().err
    assert main(["verify", "--db", str(tmp_path / "none.sqlite3")]) == exitcodes.BAD_INPUT
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()


def test_estimate_of_a_stock_never_seen_assumes_monthly_expiries(server, capsys):
    args = ["collect", "-i", "M&M", "-i", "NIFTY", "--all-expiries", "--estimate-only"]
    assert main(args) == exitcodes.OK
    out = capsys.readouterr().out
    assert "M&M: expiries not known yet (6 assumed)" in out and "NSE_EQ|" not in out
    assert "NIFTY: expiries not known yet (26 assumed)" in out


def test_unknown_and_ambiguous_symbols_exit_2_with_closest_matches(server, capsys):
    assert main(["collect", "-i", "BAJAJ", "--all-expiries", "--estimate-only"]) == 2
    err = capsys.readouterr().err
    assert "'BAJAJ' is ambiguous" in err and "BAJAJ-AUTO" in err and "BAJFINANCE" in err
    assert main(["collect", "-i", "RELIANC", "--all-expiries", "--estimate-only"]) == 2
    err = capsys.readouterr().err
    assert "unknown instrument 'RELIANC'" in err and "did you mean RELIANCE" in err
    assert main(["collect", "-i", "HDFCBNK", "--all-expiries", "--estimate-only"]) == 2
    assert "HDFCBANK" in capsys.readouterr().err  # difflib: not a substring, but close


def test_schedule_add_stores_the_key_of_a_symbol(server, market, capsys):
    code = main(
        ["schedule", "add", "-i", "bajaj-auto", "--all-expiries", "--at", "18:00",
         "--no-install"]
    )  # fmt: skip
    assert code == exitcodes.OK, capsys.readouterr().err
    assert main(["schedule", "list"]) == exitcodes.OK
    assert key_of(market, "BAJAJ-AUTO") in capsys.readouterr().out


# ---------------------------------------------------------------- offline, bad masters


def test_unreachable_master_uses_the_cached_copy_and_says_its_date(
    server, market, capsys, tmp_path
):
    assert main(["underlyings", "--search", "RELIANCE"]) == exitcodes.OK
    capsys.readouterr()
    with open_database(tmp_path / "u.sqlite3") as db:
        cached_day = db.universe_info().master_date
    dead = _closed_port_url()
    assert main(["underlyings", "--refresh", "--instruments-url", dead]) == exitcodes.OK
    out, err = capsys.readouterr()
    assert "cannot download the instrument master" in err
    assert f"using the cached instrument master of {cached_day.isoformat()}" in err
    assert len(_lines(out)) == 231
    code = main(
        ["collect", "-i", "Reliance", "--all-expiries", "--estimate-only",
         "--instruments-url", dead]
    )  # fmt: skip
    assert code == exitcodes.OK  # today's copy is cached: no download needed, no note


def test_no_master_and_no_cache_says_so_while_keys_still_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "none.sqlite3"))
    dead = _closed_port_url()
    assert main(["underlyings", "--instruments-url", dead]) == exitcodes.NETWORK
    err = capsys.readouterr().err
    assert "no cached instrument master yet" in err and "instrument keys" in err
    args = ["collect", "--instruments-url", dead, "--all-expiries", "--estimate-only"]
    assert main([*args, "-i", "NSE_EQ|INE002A01018", "-i", "NIFTY"]) == exitcodes.OK
    assert "instrument master" not in capsys.readouterr().err  # not even tried
    assert main([*args, "-i", "RELIANCE"]) == exitcodes.BAD_INPUT
    err = capsys.readouterr().err
    assert "no cached instrument master yet" in err and "'RELIANCE'" in err


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda gz: gz[: len(gz) // 2],  # truncated gzip
        lambda gz: gzip.compress(gzip.decompress(gz)[:-100]),  # broken JSON
        lambda gz: gzip.compress(
            json.dumps(
                [
                    {k: v for k, v in r.items() if k != "lot_size"}
                    for r in json.loads(gzip.decompress(gz))
                ]
            ).encode()
        ),  # a required field missing
    ],
)
async def test_bad_master_is_refused_whole_and_the_cache_kept(tmp_path, master_bytes, damage):
    good = _write(tmp_path / "good.json.gz", master_bytes)
    bad = _write(tmp_path / "bad.json.gz", damage(master_bytes))
    with open_database(tmp_path / "db.sqlite3") as db:
        first = await refresh_universe(db, good, today=TODAY)
        assert first.state == "fetched" and first.info.master_date == TODAY
        before = db.universe()
        later = await refresh_universe(db, bad, today=TODAY + timedelta(days=1))
        assert later.state == "cached" and later.info.master_date == TODAY
        assert "using the cached instrument master of 2025-11-20" in later.note
        assert db.universe() == before


async def test_load_universe_says_where_the_list_comes_from(tmp_path, master_bytes):
    good = _write(tmp_path / "good.json.gz", master_bytes)
    with open_database(tmp_path / "db.sqlite3") as db:
        rows, note = await load_universe(db, str(tmp_path / "missing.json.gz"), today=TODAY)
        assert rows == [] and "no cached instrument master yet" in note
        rows, note = await load_universe(db, good, today=TODAY)
        assert len(rows) == 231
        assert note == "7 indices and 224 stocks in F&O (instrument master of 2025-11-20)"
        rows, note = await load_universe(
            db, str(tmp_path / "missing.json.gz"), today=TODAY + timedelta(days=1)
        )
        assert len(rows) == 231 and "cached instrument master of 2025-11-20" in note


async def test_local_file_once_a_day_and_underlyings_that_left_fo(tmp_path, market):
    rows = master_rows(market)
    gone = {key_of(market, "M&M"), key_of(market, "YESBANK")}
    fewer = [r for r in rows if r.get("underlying_key") not in gone]
    full = _write(tmp_path / "full.json.gz", gzip.compress(json.dumps(rows).encode()))
    part = _write(tmp_path / "part.json", json.dumps(fewer).encode())  # plain JSON works too
    with open_database(tmp_path / "db.sqlite3") as db:
        assert (await refresh_universe(db, full, today=TODAY)).state == "fetched"
        same_day = await refresh_universe(db, part, today=TODAY)
        assert same_day.state == "current" and same_day.info.in_fo == 231  # not read again
        nxt = TODAY + timedelta(days=1)
        status = await refresh_universe(db, part, today=nxt)
        assert status.state == "fetched" and status.note is None
        assert (status.info.in_fo, status.info.former) == (229, 2)
        mm = db.universe(search="m&m")
        assert [(r.symbol, r.in_fo) for r in mm] == [("M&M", False), ("M&MFIN", True)]
        assert mm[0].first_seen == TODAY and mm[0].last_seen == TODAY
        assert mm[1].last_seen == nxt
        # still resolvable: its expired contracts can be collected for months
        assert resolve_one("m&m", db.universe()) == key_of(market, "M&M")
        assert len(db.universe(include_former=False)) == 229
        # and back in F&O later: first_seen kept, last_seen moves
        await refresh_universe(db, full, today=nxt + timedelta(days=1))
        again = db.universe(search="YESBANK")[0]
        assert again.in_fo and again.first_seen == TODAY


# ---------------------------------------------------------------- resolution


def _row(symbol: str, name: str, key: str, kind: str = "EQUITY", in_fo: bool = True):
    return UniverseRow(key, symbol, name, kind, "NSE_FO", 100, TODAY, TODAY, in_fo)


ROWS = [
    _row("NIFTY", "Nifty 50", "NSE_INDEX|Nifty 50", "INDEX"),
    _row("RELIANCE", "RELIANCE INDUSTRIES LTD", "NSE_EQ|INE002A01018"),
    _row("M&M", "MAHINDRA & MAHINDRA LTD", "NSE_EQ|INE101A01026"),
    _row("M&MFIN", "M&M FIN. SERVICES LTD", "NSE_EQ|INE774D01024"),
    _row("BAJAJ-AUTO", "BAJAJ AUTO LIMITED", "NSE_EQ|INE917I01010"),
    _row("BAJAJFINSV", "BAJAJ FINSERV LTD.", "NSE_EQ|INE918I01026"),
    _row("BAJFINANCE", "BAJAJ FINANCE LIMITED", "NSE_EQ|INE296A01024"),
]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("RELIANCE", "NSE_EQ|INE002A01018"),
        ("reliance", "NSE_EQ|INE002A01018"),
        (" Reliance ", "NSE_EQ|INE002A01018"),
        ("M&M", "NSE_EQ|INE101A01026"),
        ("m&m", "NSE_EQ|INE101A01026"),
        ("BAJAJ-AUTO", "NSE_EQ|INE917I01010"),
        ("bajaj-auto", "NSE_EQ|INE917I01010"),
        ("nifty", "NSE_INDEX|Nifty 50"),
        ("BANKNIFTY", "NSE_INDEX|Nifty Bank"),  # built-in index symbol, not in these rows
        ("NSE_EQ|INE999Z01011", "NSE_EQ|INE999Z01011"),  # a key as typed, listed or not
    ],
)
def test_symbols_resolve_in_any_case(text, key):
    assert resolve_one(text, ROWS) == key


def test_ambiguous_and_unknown_name_closest_matches():
    with pytest.raises(ResolveError, match="ambiguous") as exc:
        resolve_one("bajaj", ROWS)
    assert [r.symbol for r in exc.value.matches] == ["BAJAJ-AUTO", "BAJAJFINSV", "BAJFINANCE"]
    with pytest.raises(ResolveError, match="ambiguous") as exc:
        resolve_one("fin", ROWS)  # in three companies' names or symbols
    assert {r.symbol for r in exc.value.matches} == {"BAJAJFINSV", "BAJFINANCE", "M&MFIN"}
    with pytest.raises(ResolveError, match=r"did you mean M&M \(MAHINDRA & MAHINDRA LTD"):
        resolve_one("MAHINDRA", ROWS)  # a name is not a symbol, but it is suggested
    with pytest.raises(ResolveError, match="did you mean BAJAJ-AUTO") as exc:
        resolve_one("BAJAJAUTO", ROWS)
    with pytest.raises(ResolveError) as exc:
        resolve_one("TATAMOTORS", ROWS)
    assert "unknown instrument 'TATAMOTORS'" in str(exc.value)


def test_one_symbol_on_two_keys_is_ambiguous_unless_one_left_fo():
    twin = [*ROWS, _row("RELIANCE", "RELIANCE INDUSTRIES LTD", "BSE_EQ|INE002A01018")]
    with pytest.raises(ResolveError, match="give the instrument key") as exc:
        resolve_one("RELIANCE", twin)
    assert "NSE_EQ|INE002A01018" in str(exc.value) and "BSE_EQ|INE002A01018" in str(exc.value)
    old = [*ROWS, _row("RELIANCE", "RELIANCE OLD", "NSE_EQ|INE002A01000", in_fo=False)]
    assert resolve_one("RELIANCE", old) == "NSE_EQ|INE002A01018"


def test_without_a_master_only_keys_and_index_symbols():
    assert resolve_many(["NIFTY", "SENSEX", "NSE_EQ|INE002A01018", "nifty"], []) == [
        "NSE_INDEX|Nifty 50", "BSE_INDEX|SENSEX", "NSE_EQ|INE002A01018",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="malformed instrument 'RELIANCE'"):
        resolve_one("RELIANCE", [])
    assert needs_universe("M&M") and needs_universe("reliance")
    assert not needs_universe("NIFTY") and not needs_universe("NSE_EQ|X")
    assert not needs_universe("Nifty 50")  # a space: never a symbol


async def test_credentials_in_the_url_are_never_shown_or_stored(tmp_path, master_bytes, app):
    with serve(app) as url:
        secret = url.replace("http://", "http://user:s3cret-pw@") + INSTRUMENT_MASTER_PATH
        with open_database(tmp_path / "c.sqlite3") as db:
            status = await refresh_universe(db, secret, today=TODAY)
            assert status.state == "fetched" and "s3cret" not in status.info.source
            bad = secret.replace(INSTRUMENT_MASTER_PATH, "/nothing.json.gz")
            later = await refresh_universe(db, bad, today=TODAY + timedelta(days=1))
            assert later.state == "cached" and "HTTP 404" in later.note
            assert "s3cret" not in later.note and "user:" not in later.note


def test_instruments_url_precedence(monkeypatch, tmp_path):
    s = Settings(instruments_url="https://mirror.example/complete.json.gz")
    monkeypatch.delenv("EXPIRYTRACK_INSTRUMENTS_URL", raising=False)
    assert s.resolved_instruments_url() == "https://mirror.example/complete.json.gz"
    monkeypatch.setenv("EXPIRYTRACK_INSTRUMENTS_URL", "/data/complete.json.gz")
    assert s.resolved_instruments_url() == "/data/complete.json.gz"
    assert (
        s.resolved_instruments_url("http://127.0.0.1:9/x.json.gz") == "http://127.0.0.1:9/x.json.gz"
    )
    assert Settings().instruments_url == (
        "https://assets.upstox.com/market-quote/instruments/exchange/complete.json.gz"
    )
