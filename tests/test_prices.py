"""Prices in integer paise (schema 4): exact both ways, a side table for the price that is not a
whole number of paise, and migration 004 (in place, resumable after a kill -9)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.migrate import load_migrations
from expirytrack_desktop.store.prices import paise, stored_rows
from expirytrack_desktop.timeutil import ist_iso, parse_ts
from expirytrack_desktop.upstox.candles import decode_candles
from expirytrack_desktop.upstox.models import Contract

KEY = "NSE_INDEX|Nifty 50"
EXP = date(2025, 4, 24)
T0 = parse_ts("2025-04-24T09:15:00+05:30")

whole_paise = st.integers(min_value=0, max_value=10**9).map(lambda k: k / 100)
any_price = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


def contract(token: str) -> Contract:
    return Contract(
        instrument_key=f"NSE_FO|{token}|24-04-2025",
        underlying_key=KEY,
        underlying_symbol="NIFTY",
        expiry=EXP,
        instrument_type="CE",
        strike_price=22000.0,
        trading_symbol=f"NIFTY 22000 CE {token}",
        exchange_token=token,
        lot_size=75,
        tick_size=5.0,
        freeze_quantity=1800.0,
        minimum_lot=75,
        weekly=False,
        name="NIFTY",
        segment="NSE_FO",
        exchange="NSE",
        underlying_type="INDEX",
        raw={"instrument_key": f"NSE_FO|{token}|24-04-2025"},
    )


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "p.sqlite3")
    d.upsert_underlying(KEY, symbol="NIFTY")
    d.store_contracts(KEY, EXP, [contract("1")], mark_fetched=True)
    yield d
    d.close()


def cid_of(db) -> int:
    """The contract's id, its candles cleared (hypothesis runs many examples on one file)."""
    with db.transaction() as c:
        c.execute("DELETE FROM candle")
        c.execute("DELETE FROM candle_exact")
    return db.contracts_for(KEY, EXP)[0].id


def answer(prices: list[tuple[float, float, float, float]]) -> bytes:
    """The API's JSON (newest first; json writes each float's shortest exact text)."""
    rows = [[ist_iso(T0 + 60 * i), *p, 10 * i, 5] for i, p in enumerate(prices)]
    return json.dumps({"status": "success", "data": {"candles": rows[::-1]}}).encode()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(whole_paise, whole_paise, whole_paise, whole_paise), max_size=30))
def test_whole_paise_are_stored_as_integers_and_read_back_exactly(db, prices):
    cid = cid_of(db)
    rows = decode_candles(answer(prices))
    assert rows.iso and (rows.paise or not prices)  # the fast path: SQLite converts
    db.store_window_rows(cid, "1minute", EXP, EXP, rows)
    got = db.candle_rows("NSE_FO|1|24-04-2025")
    assert [r[1:5] for r in got] == prices
    assert all(type(v) is float for r in got for v in r[1:5])
    raw = db.execute("SELECT typeof(close), typeof(open), count(*) FROM candle GROUP BY 1, 2")
    assert all(r[0] == r[1] == "integer" for r in raw)
    assert db.execute("SELECT count(*) FROM candle_exact")[0][0] == 0


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.one_of(whole_paise, any_price), any_price, whole_paise, any_price),
        max_size=20,
    )
)
def test_any_price_reads_back_as_the_same_float(db, prices):
    """A price that is not whole paise (never sent by Upstox, but not refused: the data cannot
    be fetched again) is kept exactly in the side table; the views show it unchanged."""
    cid = cid_of(db)
    db.store_window_rows(cid, "1minute", EXP, EXP, decode_candles(answer(prices)))
    got = db.candle_rows("NSE_FO|1|24-04-2025")
    assert [r[1:5] for r in got] == prices
    side = sum(1 for p in prices if any(paise(x) is None for x in p))
    assert db.execute("SELECT count(*) FROM candle_exact")[0][0] == side
    view = db.execute("SELECT open, high, low, close FROM historical_data ORDER BY timestamp")
    assert [tuple(r) for r in view] == prices
    # the same window again in whole paise: the side rows go, the values follow
    again = [(1.05, 2.0, 0.05, 1.1)] * len(prices)
    db.store_window_rows(cid, "1minute", EXP, EXP, decode_candles(answer(again)))
    assert [r[1:5] for r in db.candle_rows("NSE_FO|1|24-04-2025")] == again
    assert db.execute("SELECT count(*) FROM candle_exact")[0][0] == 0


@given(any_price)
def test_paise_is_exact_or_none(p):
    k = paise(p)
    assert k is None or k / 100 == p
    assert paise(round(p, 2)) is not None or abs(p) > 2**45


def test_python_candles_take_the_same_layout(db):
    cid = cid_of(db)
    candles = [(T0, 100.05, 101.0, 99.95, 100.5, 7, 9), (T0 + 60, 0.1 + 0.2, 1.0, 0.05, 1.0, 0, 0)]
    db.store_window(cid, "1minute", EXP, EXP, candles)
    assert db.candle_rows("NSE_FO|1|24-04-2025") == candles
    assert [tuple(r) for r in db.execute("SELECT close, open, high, low FROM candle")] == [
        (10050, -45, 50, -55),
        (None, None, None, None),
    ]
    _, exact = stored_rows(candles)
    assert exact == [(T0 + 60, 0.1 + 0.2, 1.0, 0.05, 1.0)]
    with pytest.raises(ValueError, match="finite"):
        stored_rows([(T0, float("nan"), 1.0, 1.0, 1.0, 0, 0)])


def test_views_show_rupees_and_one_job_row_per_underlying_and_expiry(db):
    row = db.execute("SELECT tick_size FROM contracts")[0]
    assert row[0] == 0.05  # the API's 5 paise
    assert db.execute("SELECT tick_size FROM contract")[0][0] == 5.0


# ---- migration 004 ----------------------------------------------------------------------------

OLD_PRICES = [
    (100.05, 101.0, 99.95, 100.5),
    (0.05, 0.1, 0.05, 0.05),
    (2114.2999999999997, 0.1 + 0.2, 1e-7, 3.0),  # not whole paise: the side table
    (22500.0, 22510.55, 22490.4, 22505.25),
]


def old_database(path: Path, contracts: int = 30, per: int = 200) -> dict[int, list[tuple]]:
    """A schema-3 file with candles in the old REAL layout; returns the candles by contract."""
    con = sqlite3.connect(path, isolation_level=None)
    for number, _name, sql in load_migrations()[:3]:
        con.executescript(f"BEGIN;{sql};PRAGMA user_version = {number};COMMIT;")
    con.execute("INSERT INTO underlying(id, instrument_key, symbol) VALUES (1, ?, 'NIFTY')", (KEY,))
    con.execute("INSERT INTO expiry(id, underlying_id, expiry_date) VALUES (1, 1, '2025-04-24')")
    con.execute(
        "INSERT INTO job(id, job_type, status, params_json) VALUES (1, 'collect', 'completed', ?)",
        (json.dumps({"underlyings": [KEY], "expiries": ["2025-04-24"]}),),
    )
    want: dict[int, list[tuple]] = {}
    con.execute("BEGIN")
    for cid in range(1, contracts + 1):
        con.execute(
            "INSERT INTO contract(id, expired_key, expiry_id, contract_type, tick_size) "
            "VALUES (?, ?, 1, 'CE', 5.0)",
            (cid, f"NSE_FO|{cid}|24-04-2025"),
        )
        rows = [
            (T0 + 60 * i, *OLD_PRICES[(i + cid) % len(OLD_PRICES)], i, 7 * i) for i in range(per)
        ]
        con.executemany(
            f"INSERT INTO candle VALUES ({cid}, 1, ?, ?, ?, ?, ?, ?, ?)",
            [(ts, o, h, lo, c, v, oi) for ts, o, h, lo, c, v, oi in rows],
        )
        con.execute(
            "INSERT INTO fetch_window(contract_id, interval, from_date, to_date, state, candles) "
            "VALUES (?, 1, '2025-04-24', '2025-04-24', 'fetched', ?)",
            (cid, per),
        )
        want[cid] = rows
    con.execute("COMMIT")
    con.close()
    return want


def stored(db) -> dict[int, list[tuple]]:
    out: dict[int, list[tuple]] = {}
    for r in db.execute(
        "SELECT contract_id, ts, open, high, low, close, volume, oi FROM candle_rupees "
        "ORDER BY contract_id, ts"
    ):
        out.setdefault(r[0], []).append(tuple(r[1:]))
    return out


def test_migration_converts_in_place_exactly_with_a_backup(tmp_path):
    path = tmp_path / "old.sqlite3"
    want = old_database(path)
    seen: list[tuple[int, int]] = []
    with open_database(path, on_migrate=lambda d, t: seen.append((d, t))) as db:
        assert db.schema_version >= 4
        assert stored(db) == want
        assert db.integrity_check() == "ok"
        side = db.execute("SELECT count(*) FROM candle_exact")[0][0]
        assert side == sum(1 for rows in want.values() for r in rows if r[1] == 2114.2999999999997)
        assert db.execute("SELECT tick_size FROM contracts LIMIT 1")[0][0] == 0.05
        assert [
            tuple(r) for r in db.execute("SELECT instrument_key, expiry_date FROM job_status")
        ] == [(KEY, "2025-04-24")]
        assert db.kv_get("migration_004_copied_through") is None
    assert seen[-1] == (6000, 6000) and seen[0][0] == 0
    assert (tmp_path / "old.sqlite3.v3.bak").exists()


KILLED = textwrap.dedent(
    """
    import sys, time
    import expirytrack_desktop.store.compact as compact
    from expirytrack_desktop.store import open_database
    compact.BATCH_ROWS = 400
    def progress(done, total):
        print(done, flush=True)
        time.sleep(0.05)
    open_database(sys.argv[1], on_migrate=progress)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("after_batches", [1, 4, 9])
def test_migration_killed_mid_way_finishes_exactly_when_run_again(tmp_path, after_batches):
    path = tmp_path / "old.sqlite3"
    want = old_database(path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(after_batches + 1)]  # the first: 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "finished\n" not in lines
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3  # stopped half-way
    mark = con.execute("SELECT value FROM kv WHERE key = 'migration_004_copied_through'")
    last, done = (int(x) for x in mark.fetchone()[0].split(":"))
    assert 0 < done < 6000 and 0 < last < 30
    con.close()
    seen: list[tuple[int, int]] = []
    with open_database(path, on_migrate=lambda d, t: seen.append((d, t))) as db:
        assert seen[0][0] == done  # continues where it stopped
        assert stored(db) == want
        assert db.integrity_check() == "ok"
    assert sorted(p.name for p in tmp_path.glob("*.bak")) == ["old.sqlite3.v3.bak"]


def test_the_cli_shows_the_migration_progress(tmp_path):
    path = tmp_path / "old.sqlite3"
    old_database(path, contracts=3, per=50)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "expirytrack_desktop", "status", "--db", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Updating the database layout: 150/150 candles (100%)" in proc.stderr
    assert "150 candles" in proc.stdout  # the status line, read from the new layout
