"""OpenAlgo Historify hand-off, checked in a real DuckDB holding Historify's schema.

The schema below is written from Historify's own table definitions (README, "OpenAlgo
Historify"), not taken from our module, so a drift in either shows up here.
"""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions, InvalidOptionsError, run_export
from tests._export_db import CONTRACTS, build_db, exchange_of

duckdb = pytest.importorskip("duckdb")

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
SYMBOL = {c.id: c.expected_symbol for c in CONTRACTS}
EXCHANGE = {c.id: exchange_of(c) for c in CONTRACTS}
HISTORIFY_SCHEMA = """
CREATE TABLE market_data (
    symbol VARCHAR NOT NULL,
    exchange VARCHAR NOT NULL,
    interval VARCHAR NOT NULL,
    timestamp BIGINT NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume BIGINT NOT NULL,
    oi BIGINT DEFAULT 0,
    created_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (symbol, exchange, interval, timestamp)
)"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def want_rows(db: Path, interval: int = 1, label: str = "1m") -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT contract_id, ts, open, high, low, close, volume, oi FROM candle_rupees "
            "WHERE interval = ?",
            (interval,),
        ).fetchall()
    return sorted((SYMBOL[cid], EXCHANGE[cid], label, *rest) for cid, *rest in rows)


def market_data(path: Path, where: str = "") -> list[tuple]:
    with closing(duckdb.connect(str(path))) as con:
        return sorted(
            con.execute(
                "SELECT symbol, exchange, interval, timestamp, open, high, low, close, volume, oi"
                f" FROM market_data {where}"
            ).fetchall()
        )


def historify_db(path: Path) -> Path:
    """A Historify database as OpenAlgo leaves it: its table, one stock's candle, and a stale
    row for one of our keys (to be replaced, not duplicated)."""
    first = want_rows_first()
    with closing(duckdb.connect(str(path))) as con:
        con.execute(HISTORIFY_SCHEMA)
        con.execute(
            "INSERT INTO market_data VALUES ('SBIN', 'NSE', '1m', 1745293500, 1, 2, 0.5, 1.5, 10,"
            " 0, DEFAULT)"
        )
        con.execute(
            "INSERT INTO market_data (symbol, exchange, interval, timestamp, open, high, low,"
            " close, volume) VALUES (?, ?, '1m', ?, 9, 9, 9, 9, 9)",
            [first[0], first[1], first[3]],
        )
    return path


def want_rows_first() -> tuple:
    from tests._export_db import candles_of

    c = CONTRACTS[0]
    return (c.expected_symbol, exchange_of(c), "1m", candles_of(c)[0][2])


def test_direct_load_upserts_every_row_once(db, tmp_path):
    target = historify_db(tmp_path / "historify.duckdb")
    result = run_export(db, ExportOptions(ALL, format="historify"), target)
    want = want_rows(db)
    assert result.rows == len(want) == 32
    ours = "WHERE symbol <> 'SBIN'"
    assert market_data(target, ours) == want  # every row, the stale one replaced
    assert market_data(target, "WHERE symbol = 'SBIN'")[0][:4] == ("SBIN", "NSE", "1m", 1745293500)
    run_export(db, ExportOptions(ALL, format="historify"), target)  # again: harmless
    assert market_data(target, ours) == want
    with closing(duckdb.connect(str(target))) as con:
        (total, distinct) = con.execute(
            "SELECT count(*), count(DISTINCT (symbol, exchange, interval, timestamp))"
            " FROM market_data"
        ).fetchone()
        catalog = con.execute(
            "SELECT symbol, exchange, interval, first_timestamp, last_timestamp, record_count"
            " FROM data_catalog ORDER BY symbol"
        ).fetchall()
        ids = [r[0] for r in con.execute("SELECT id FROM data_catalog").fetchall()]
        meta = con.execute(
            "SELECT exchange, expiry, strike, lotsize, instrumenttype FROM symbol_metadata"
            " WHERE symbol = 'VEDL25APR24292.5CE'"
        ).fetchall()
    assert total == distinct == 33
    assert len(ids) == len(set(ids)) == len(catalog) == 6  # contracts with candles
    for sym, exch, iv, first, last, n in catalog:
        mine = [r for r in want if r[0] == sym]
        assert (exch, iv, first, last, n) == (mine[0][1], "1m", mine[0][3], mine[-1][3], len(mine))
    assert meta == [("NFO", "25-APR-24", 292.5, 1550, "CE")]
    assert {r[1] for r in want} == {"NFO", "BFO"}


def test_daily_candles_load_as_D(db, tmp_path):
    with closing(sqlite3.connect(db)) as conn, conn:
        # the store's layout: close in paise, open/high/low relative (O 1.5 H 2.5 L 1.0 C 2.0)
        conn.execute("INSERT INTO candle VALUES (105, 1440, 1745433000, 200, -50, 50, -100, 7, 3)")
        conn.execute("INSERT INTO candle VALUES (100, 1440, 1745433000, 400, -50, 50, -100, 8, 4)")
    target = tmp_path / "h.duckdb"
    run_export(db, ExportOptions(ALL, format="historify", interval="day"), target)
    assert market_data(target) == want_rows(db, 1440, "D")
    assert {r[:3] for r in market_data(target)} == {
        ("NIFTY24APR25FUT", "NFO", "D"), ("SENSEX5024APR25FUT", "BFO", "D")
    }  # fmt: skip


def test_other_intervals_are_refused(db, tmp_path):
    with pytest.raises(InvalidOptionsError, match="1-minute and daily"):
        run_export(db, ExportOptions(ALL, format="historify", interval="5minute"), tmp_path / "x")


def test_cancel_leaves_the_database_as_it_was(db, tmp_path):
    import threading

    target = historify_db(tmp_path / "historify.duckdb")
    before = market_data(target)
    cancel = threading.Event()

    def progress(p) -> None:
        if p.rows_done:
            cancel.set()

    with pytest.raises(Exception, match="cancelled"):
        run_export(db, ExportOptions(ALL, format="historify"), target, progress=progress,
                   cancel=cancel, chunk_rows=2)  # fmt: skip
    assert market_data(target) == before


def test_files_import_exactly_as_historify_reads_them(db, tmp_path):
    """Per-symbol Parquet with int64 epoch-second timestamps, imported the way Historify's
    upload does it: one file, one symbol/exchange/interval typed beside it."""
    import pandas as pd

    out = tmp_path / "for_historify"
    result = run_export(db, ExportOptions(ALL, format="historify"), out)
    with open(out / "manifest.csv", encoding="utf-8", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert len(manifest) == len(CONTRACTS) == result.files - 1
    with closing(duckdb.connect(str(tmp_path / "imported.duckdb"))) as con:
        con.execute(HISTORIFY_SCHEMA)
        for entry in manifest:
            df = pd.read_parquet(out / entry["file"])
            assert list(df.columns) == ["timestamp", "open", "high", "low", "close", "volume", "oi"]
            assert str(df["timestamp"].dtype) == "int64"
            assert int(entry["rows"]) == len(df)
            for r in df.itertuples(index=False):
                con.execute(
                    "INSERT INTO market_data (symbol, exchange, interval, timestamp, open, high,"
                    " low, close, volume, oi) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [entry["symbol"], entry["exchange"], entry["interval"], int(r.timestamp),
                     r.open, r.high, r.low, r.close, int(r.volume), int(r.oi)],
                )  # fmt: skip
        got = sorted(
            con.execute(
                "SELECT symbol, exchange, interval, timestamp, open, high, low, close, volume, oi"
                " FROM market_data"
            ).fetchall()
        )
    assert got == want_rows(db)
    assert (out / "BFO" / "SENSEX5024APR25FUT.parquet").is_file()


def test_cli_loads_and_refuses_bad_intervals(db, tmp_path, capsys):
    target = tmp_path / "h.duckdb"
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-f", "historify", "-o", str(target)])
    assert code == exitcodes.OK
    assert len(market_data(target)) == 24
    assert "exported 24 rows" in capsys.readouterr().out
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-f", "historify",
                 "--interval", "5minute", "-o", str(target)])  # fmt: skip
    assert code == exitcodes.BAD_INPUT
    assert "1-minute and daily" in capsys.readouterr().err


def test_catalog_numbers_after_historify_own_rows_and_updates_in_place(db, tmp_path):
    """Historify numbers data_catalog rows itself (max + 1, no sequence): ours follow its own
    rows in symbol order; a second load updates them in place (same ids, new counts)."""
    from expirytrack_desktop.export.historify import CATALOG_SQL, MARKET_DATA_SQL, METADATA_SQL

    target = tmp_path / "historify.duckdb"
    with closing(duckdb.connect(str(target))) as con:
        for sql in (MARKET_DATA_SQL, CATALOG_SQL, METADATA_SQL):
            con.execute(sql)
        con.execute("INSERT INTO data_catalog (id, symbol, exchange, interval) VALUES"
                    " (41, 'SBIN', 'NSE', '1m')")  # fmt: skip
    run_export(db, ExportOptions(ALL, format="historify"), target)

    def catalog():
        with closing(duckdb.connect(str(target))) as con:
            return con.execute(
                "SELECT id, symbol, record_count FROM data_catalog ORDER BY id"
            ).fetchall()

    assert market_data(target) == want_rows(db)  # a fresh target: plain INSERT, exact
    first = catalog()
    ours = [r for r in first if r[1] != "SBIN"]
    assert [r[0] for r in ours] == list(range(42, 42 + len(ours)))
    assert [r[1] for r in ours] == sorted(r[1] for r in ours)
    assert sum(r[2] for r in ours) == 32
    with closing(sqlite3.connect(db)) as conn, conn:  # one more candle for the first contract
        cid = CONTRACTS[0].id
        last = conn.execute("SELECT max(ts) FROM candle WHERE contract_id = ?", (cid,)).fetchone()
        conn.execute("INSERT INTO candle VALUES (?, 1, ?, 100, 0, 0, 0, 1, 1)", (cid, last[0] + 60))
    run_export(db, ExportOptions(ALL, format="historify"), target)
    second = {r[1]: r for r in catalog()}
    sym = CONTRACTS[0].expected_symbol
    assert {r[1]: r[0] for r in first} == {s: r[0] for s, r in second.items()}
    assert second[sym][2] == {r[1]: r[2] for r in first}[sym] + 1
    assert market_data(target) == want_rows(db)  # on top: the upsert, every row once


def test_metadata_of_two_contracts_with_one_symbol_keeps_the_last(tmp_path):
    """One statement for all contracts; DuckDB refuses to update a row twice in one, so the
    contracts are reduced first -- the last wins, as row-by-row upserts did."""
    from expirytrack_desktop.export.historify import METADATA_SQL, _upsert_metadata
    from expirytrack_desktop.export.query import SelectedContract

    def contract(cid: int, lot: int | None, strike: float | None) -> SelectedContract:
        return SelectedContract(cid, "NIFTY24APR25FUT", "K", "NIFTY", "Nifty_50",
                                "2025-04-24", "FUT", strike, "", lot, "NFO")  # fmt: skip

    with closing(duckdb.connect(str(tmp_path / "h.duckdb"))) as con:
        con.execute(METADATA_SQL)
        _upsert_metadata(con, [contract(1, 50, None), contract(2, 75, None)])
        _upsert_metadata(con, [contract(3, None, 22000.0)])
        rows = con.execute(
            "SELECT symbol, name, expiry, strike, lotsize, instrumenttype FROM symbol_metadata"
        ).fetchall()
    assert rows == [("NIFTY24APR25FUT", "NIFTY24APR25FUT", "24-APR-25", 22000.0, None, "FUT")]
