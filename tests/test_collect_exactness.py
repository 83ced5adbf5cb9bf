"""Exactness of a CLI collection against a faulty simulator: the fast version of
``bench/bench_collect_exact.py`` (in-process transport, no latency, small market).

Every contract with every metadata column (and its raw JSON) and every candle with every value
must equal the simulator's ground truth, nothing extra, through the tables and through the
documented views.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

from expirytrack_desktop import runtime
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import target_range
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, FaultConfig
from expirytrack_desktop.timeutil import ist_iso
from tests.collect_helpers import NIFTY, ground_truth_rows, make_app

MONTHS = 4  # longer than a monthly contract's listed life: the range holds all its candles
FAULTS = FaultConfig(http_500=0.05, truncated_json=0.02, drop_connection=0.02, seed=3)


async def _no_sleep(_s: float) -> None:
    return None


def test_collection_is_exact_and_complete(monkeypatch, tmp_path):
    """``expirytrack collect`` for NIFTY's last two expiries, then every check below."""
    app = make_app(strikes=1, faults=FAULTS, span_cap={"1minute": 30})
    expiries = app.market.expiries(NIFTY)[-2:]
    db_path = tmp_path / "exact.sqlite3"
    monkeypatch.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
    argv = ["collect", "-i", NIFTY, "--months", str(MONTHS), "--db", str(db_path)]
    for e in expiries:
        argv += ["-e", e.isoformat()]
    with runtime.override(
        transport=app.transport(),
        client_kwargs={"sleep": _no_sleep, "max_attempts": 8},
        ledger_path=False,
    ):
        assert main(argv) == exitcodes.OK
    assert app.stats.faults_injected > 0
    assert app.stats.by_status[400] >= 1  # the span cap was hit and learned
    check_contracts(app, expiries, db_path)
    check_candles(app, expiries, db_path)
    check_rerun_fetches_no_candles(app, expiries, db_path)


def _items(app, expiries):
    for e in expiries:
        for item in app.market.option_contracts(NIFTY, e) + app.market.future_contracts(NIFTY, e):
            yield e, item


def check_contracts(app, expiries, db_path) -> None:
    with closing(sqlite3.connect(db_path)) as con:
        rows = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT c.expired_key, u.instrument_key, e.expiry_date, e.is_weekly, "
                "c.contract_type, c.strike_price, c.trading_symbol, c.lot_size, c.tick_size, "
                "c.exchange_token, c.freeze_quantity, c.minimum_lot, c.weekly, "
                "c.underlying_symbol, c.raw_json, c.openalgo_symbol FROM contract c "
                "JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id"
            )
        }
        want = {}
        for e, it in _items(app, expiries):
            fut = it["instrument_type"] == "FUT"
            want[it["instrument_key"]] = (
                NIFTY, e.isoformat(), int(app.market.is_weekly(NIFTY, e)), it["instrument_type"],
                None if fut else it["strike_price"], it["trading_symbol"], it["lot_size"],
                it["tick_size"], it["exchange_token"], it["freeze_quantity"], it["minimum_lot"],
                None if fut else int(it["weekly"]), it["underlying_symbol"],
            )  # fmt: skip
            got = rows.get(it["instrument_key"])
            assert got is not None, it["instrument_key"]
            assert json.loads(got[13]) == it  # raw JSON: every field the API sent
            symbol = got[14]
            assert symbol and symbol.startswith("NIFTY") and symbol.endswith(it["instrument_type"])
        assert {k: v[:13] for k, v in rows.items()} == want  # and nothing extra
        # the documented view answers the same
        view = dict(con.execute("SELECT expired_instrument_key, strike_price FROM contracts"))
        assert view == {k: v[4] for k, v in want.items()}


def check_candles(app, expiries, db_path) -> None:
    with closing(sqlite3.connect(db_path)) as con:
        total = 0
        for e, it in _items(app, expiries):
            key = it["instrument_key"]
            f, t = target_range(e, MONTHS)
            want = ground_truth_rows(app.market, key, "1minute", f, t)
            assert len(want) == len(app.market.candles(key))  # the range holds the whole life
            got = con.execute(
                "SELECT k.ts, k.open, k.high, k.low, k.close, k.volume, k.oi FROM candle_rupees k "
                "JOIN contract c ON c.id = k.contract_id "
                "WHERE c.expired_key = ? AND k.interval = 1 ORDER BY k.ts",
                (key,),
            ).fetchall()
            assert got == want, key
            total += len(want)
            if want:  # the documented view: ISO 8601 with +05:30, same values
                first = con.execute(
                    "SELECT timestamp, open, high, low, close, volume, open_interest "
                    "FROM historical_data WHERE expired_instrument_key = ? "
                    "ORDER BY timestamp LIMIT 1",
                    (key,),
                ).fetchone()
                assert first == (ist_iso(want[0][0]), *want[0][1:])
        assert total > 0
        assert con.execute("SELECT count(*) FROM candle").fetchone()[0] == total
        assert con.execute("SELECT count(*) FROM historical_data").fetchone()[0] == total
        failed = con.execute("SELECT count(*) FROM fetch_window WHERE state = 'failed'")
        assert failed.fetchone() == (0,)


def check_rerun_fetches_no_candles(app, expiries, db_path) -> None:
    before = app.stats.by_endpoint["historical_candle"]
    app.faults = FaultConfig()
    argv = ["collect", "-i", NIFTY, "--months", str(MONTHS), "--db", str(db_path)]
    for e in expiries:
        argv += ["-e", e.isoformat()]
    with runtime.override(
        transport=app.transport(), client_kwargs={"sleep": _no_sleep}, ledger_path=False
    ):
        assert main(argv) == exitcodes.OK
    assert app.stats.by_endpoint["historical_candle"] == before
