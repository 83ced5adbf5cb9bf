"""Stocks are named by their trading symbol wherever a job or an underlying is shown: the job
summaries and jobs table (new and old rows), `jobs`/`status`, estimate notes, coverage and the
at-risk lists (they read the underlying's stored symbol). The names come from the simulator's
instrument master, as a real run gets them from Upstox's."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.universe import refresh_universe
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, SimulatorApp, serve
from expirytrack_desktop.sandbox.market import Market
from expirytrack_desktop.sandbox.master import master_rows
from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH
from expirytrack_desktop.store import open_database

TODAY = date(2025, 11, 20)


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=TODAY, stocks=True, strikes_per_side=1)


def key_of(market: Market, symbol: str) -> str:
    return next(u.key for u in market.underlyings() if u.symbol == symbol)


@pytest.fixture
def server(market, monkeypatch, tmp_path):
    app = SimulatorApp(market, rate_limit=None)
    with serve(app) as url:
        monkeypatch.setenv("EXPIRYTRACK_INSTRUMENTS_URL", url + INSTRUMENT_MASTER_PATH)
        monkeypatch.setenv("EXPIRYTRACK_DB", str(tmp_path / "n.sqlite3"))
        monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
        yield url


def test_jobs_and_status_name_the_stock_not_its_isin(server, market, capsys, tmp_path):
    key = key_of(market, "BAJAJ-AUTO")
    assert key.startswith("NSE_EQ|INE")
    exp = market.expiries(key)[-1].isoformat()
    args = ["collect", "--api-base", server, "-i", "bajaj-auto", "-e", exp, "--months", "1",
            "--interval", "day", "--rate-limit", "1000/1"]  # fmt: skip
    assert main(args) == exitcodes.OK, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "NSE_EQ|" not in out
    for cmd in (["jobs"], ["status"]):
        assert main(cmd) == exitcodes.OK
        out = capsys.readouterr().out
        assert "BAJAJ-AUTO" in out and "INE" not in out, out
    with open_database(tmp_path / "n.sqlite3") as db:
        [job] = db.list_jobs()
        assert job.underlyings == "BAJAJ-AUTO"
        assert {r.symbol for r in db.coverage()} == {"BAJAJ-AUTO"}  # at-risk lists read this


def test_estimate_notes_name_a_stock_never_collected(server, capsys):
    args = ["collect", "-i", "M&M", "--all-expiries", "--estimate-only"]
    assert main(args) == exitcodes.OK
    out = capsys.readouterr().out
    assert "M&M: expiries not known yet (6 assumed)" in out and "NSE_EQ|" not in out


async def test_rows_stored_before_the_master_was_known_read_by_symbol(market, tmp_path):
    key = key_of(market, "M&M")
    master = tmp_path / "master.json.gz"
    master.write_bytes(gzip.compress(json.dumps(master_rows(market)).encode()))
    with open_database(tmp_path / "old.sqlite3") as db:
        # an older run: the stock collected by key before any master was cached
        db.upsert_underlying(key)
        db.upsert_expiries(key, market.expiries(key))
        jid = db.create_job("collect", {"underlyings": [key], "expiries": None}, underlyings=key)
        other = db.create_job("collect", {"underlyings": [key]}, underlyings="kept as typed")
        assert db.get_job(jid).underlyings == key  # nothing known yet: the key, as before
        assert display_name(key, db.underlying_names([key])) == key
        await refresh_universe(db, str(master), today=TODAY)
        names = db.underlying_names([key, "NSE_INDEX|Nifty 50", "NSE_EQ|UNKNOWN"])
        assert names == {key: "M&M", "NSE_INDEX|Nifty 50": "NIFTY"}
        assert display_name("NSE_EQ|UNKNOWN", names) == "NSE_EQ|UNKNOWN"  # falls back to key
        assert db.get_job(jid).underlyings == "M&M"
        assert {j.id: j.underlyings for j in db.list_jobs()} == {jid: "M&M", other: "kept as typed"}
        assert {r.symbol for r in db.coverage()} == {"M&M"}  # the underlying row is named now
        # a stock first collected after the master was cached is named from the start
        later = key_of(market, "RELIANCE")
        db.upsert_underlying(later)
        assert db.underlying_names([later]) == {later: "RELIANCE"}
        got = db.execute("SELECT symbol FROM underlying WHERE instrument_key = ?", (later,))
        assert [tuple(r) for r in got] == [("RELIANCE",)]
