"""On-disk size per 1-minute candle after VACUUM: our store next to the product document's schema.

Rows: every 1-minute candle of NIFTY's last two expiries in the simulator (seed 7, today
2025-06-01; 85 contracts, 471,530 candles over 4 months) and the 85 contracts.

- ours: ``open_database`` (the current schema), contracts via ``store_contracts``, candles via
  ``store_window`` (the engine's write: one window per contract), then VACUUM and a WAL
  checkpoint;
- document: the product documentation's "Database Schema", reproduced below (instruments,
  expiries, contracts, historical_data with its text primary key, job_status, and its two
  indexes ``idx_historical_date`` on ``DATE(timestamp)`` and ``idx_historical_instrument``),
  holding the same rows: text instrument keys, ISO 8601 text timestamps as the API sends them
  (``2025-05-29T09:15:00+05:30``), the contract's JSON as ``metadata``; then VACUUM.

Reported: whole file per candle, and candle storage alone (tables + indexes holding candles,
from ``dbstat``). Target: ours <= 40% of the document's.

    .venv/bin/python bench/bench_size.py [--breakdown]

``--breakdown`` also writes the same candles in the layouts of LAYOUTS (schema 1's REAL
rupees, whole paise, schema 4's paise relative to the close, minute times) and prints each.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from _collect_harness import MONTHS, NIFTY, last_expiries, make_app

from expirytrack_desktop.collect.plan import target_range
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import parse_ts
from expirytrack_desktop.upstox.client import _contract

DOC_SCHEMA = """
CREATE TABLE instruments (
    instrument_key TEXT PRIMARY KEY, symbol TEXT NOT NULL, name TEXT, exchange TEXT,
    segment TEXT, underlying_type TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE expiries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instrument_key TEXT, expiry_date DATE,
    is_weekly BOOLEAN, contracts_fetched BOOLEAN DEFAULT FALSE, data_fetched BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (instrument_key) REFERENCES instruments(instrument_key));
CREATE TABLE contracts (
    expired_instrument_key TEXT PRIMARY KEY, instrument_key TEXT, expiry_date DATE,
    contract_type TEXT, strike_price DECIMAL(10,2), trading_symbol TEXT, lot_size INTEGER,
    tick_size DECIMAL(10,2), exchange_token TEXT, metadata JSON,
    FOREIGN KEY (instrument_key) REFERENCES instruments(instrument_key));
CREATE TABLE historical_data (
    expired_instrument_key TEXT, timestamp TIMESTAMP, open DECIMAL(10,2), high DECIMAL(10,2),
    low DECIMAL(10,2), close DECIMAL(10,2), volume BIGINT, open_interest BIGINT,
    PRIMARY KEY (expired_instrument_key, timestamp),
    FOREIGN KEY (expired_instrument_key) REFERENCES contracts(expired_instrument_key));
CREATE INDEX idx_historical_date ON historical_data(DATE(timestamp));
CREATE INDEX idx_historical_instrument ON historical_data(expired_instrument_key);
CREATE TABLE job_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job_type TEXT, instrument_key TEXT, expiry_date DATE,
    status TEXT, started_at TIMESTAMP, completed_at TIMESTAMP, error_message TEXT,
    retry_count INTEGER DEFAULT 0);
"""


def file_bytes(path: Path) -> int:
    return sum(
        os.path.getsize(str(path) + s) for s in ("", "-wal") if os.path.exists(str(path) + s)
    )


def dbstat(path: Path, names: tuple[str, ...]) -> int:
    con = sqlite3.connect(str(path))
    try:
        marks = ",".join("?" * len(names))
        return int(
            con.execute(
                f"SELECT COALESCE(sum(pgsize), 0) FROM dbstat WHERE name IN ({marks})", names
            ).fetchone()[0]
        )
    finally:
        con.close()


# The same candles in other layouts (--breakdown): what each step of the paise layout saves.
_KEY = "contract_id INTEGER NOT NULL, interval INTEGER NOT NULL, ts INTEGER NOT NULL"
_TAIL = "volume INTEGER NOT NULL, oi INTEGER NOT NULL, PRIMARY KEY (contract_id, interval, ts)"
LAYOUTS = {
    "schema 1: REAL rupees": (
        f"{_KEY}, open REAL, high REAL, low REAL, close REAL, {_TAIL}",
        "contract_id, interval, ts, open, high, low, close, volume, oi",
    ),
    "integer paise, each price whole": (
        f"{_KEY}, open INTEGER, high INTEGER, low INTEGER, close INTEGER, {_TAIL}",
        "contract_id, interval, ts, round(open * 100), round(high * 100), round(low * 100), "
        "round(close * 100), volume, oi",
    ),
    "schema 4: close in paise, open/high/low relative (kept)": (
        f"{_KEY}, close INTEGER, open INTEGER, high INTEGER, low INTEGER, {_TAIL}",
        "contract_id, interval, ts, round(close * 100), round((open - close) * 100), "
        "round((high - close) * 100), round((low - close) * 100), volume, oi",
    ),
    "... and minutes since 2020 for the time (not kept)": (
        f"{_KEY}, close INTEGER, open INTEGER, high INTEGER, low INTEGER, {_TAIL}",
        "contract_id, interval, (ts - 1577836800) / 60, round(close * 100), "
        "round((open - close) * 100), round((high - close) * 100), round((low - close) * 100), "
        "volume, oi",
    ),
}


def breakdown(ours: Path, n: int) -> None:
    """Each layout of LAYOUTS in a copy of our file (same contracts and windows), vacuumed."""
    print("  layouts (whole file after VACUUM, same rows):")
    for name, (columns, select) in LAYOUTS.items():
        path = ours.with_name("layout.sqlite3")
        path.unlink(missing_ok=True)
        shutil.copy(ours, path)
        con = sqlite3.connect(str(path))
        con.execute(f"CREATE TABLE k2 ({columns}) WITHOUT ROWID")
        con.execute(f"INSERT INTO k2 SELECT {select} FROM candle_rupees")
        con.execute("DROP VIEW historical_data")
        con.execute("DROP VIEW historical_data_all")
        con.execute("DROP VIEW candle_rupees")
        con.execute("DROP TABLE candle")
        con.commit()
        con.execute("VACUUM")
        con.close()
        print(f"    {name}: {file_bytes(path) / n:.1f} B/candle")
        path.unlink()


def main() -> int:
    app = make_app(faults=None)
    m = app.market
    tmp = Path(tempfile.mkdtemp(prefix="bench-size-"))
    ours, doc = tmp / "ours.sqlite3", tmp / "doc.sqlite3"

    db = open_database(ours)
    dcon = sqlite3.connect(str(doc))
    dcon.executescript(DOC_SCHEMA)
    dcon.execute(
        "INSERT INTO instruments VALUES (?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP)",
        (NIFTY, "NIFTY", "NIFTY", "NSE", "NSE_INDEX", "INDEX"),
    )
    n = 0
    for e in last_expiries(app):
        items = m.option_contracts(NIFTY, e) + m.future_contracts(NIFTY, e)
        contracts = [_contract(i, future=i["instrument_type"] == "FUT") for i in items]
        db.store_contracts(NIFTY, e, contracts, mark_fetched=True)
        ids = {r.expired_key: r.id for r in db.contracts_for(NIFTY, e)}
        dcon.execute(
            "INSERT INTO expiries(instrument_key, expiry_date, is_weekly, contracts_fetched, "
            "data_fetched) VALUES (?, ?, ?, 1, 1)",
            (NIFTY, e.isoformat(), m.is_weekly(NIFTY, e)),
        )
        f, t = target_range(e, MONTHS)
        for it in items:
            key = it["instrument_key"]
            dcon.execute(
                "INSERT INTO contracts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, NIFTY, e.isoformat(), it["instrument_type"], it.get("strike_price"),
                 it["trading_symbol"], it["lot_size"], it["tick_size"], it["exchange_token"],
                 json.dumps(it)),
            )  # fmt: skip
            rows = m.candle_rows(key, "1minute", f, t, newest_first=False)
            candles = [
                (parse_ts(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]),
                 int(r[6]))
                for r in rows
            ]  # fmt: skip
            db.store_window(ids[key], "1minute", f, t, candles)
            dcon.executemany("INSERT INTO historical_data VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [(key, *r) for r in rows])  # fmt: skip
            n += len(rows)
    dcon.commit()
    db.close()
    for path in (ours, doc):
        con = sqlite3.connect(str(path))
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    dcon.close()

    ours_file, doc_file = file_bytes(ours), file_bytes(doc)
    ours_candles = dbstat(ours, ("candle",))
    doc_candles = dbstat(
        doc,
        ("historical_data", "sqlite_autoindex_historical_data_1", "idx_historical_date",
         "idx_historical_instrument"),
    )  # fmt: skip
    print(f"{n} 1-minute candles, 85 contracts; after VACUUM:")
    print(
        f"  whole file: ours {ours_file / 1e6:.2f} MB = {ours_file / n:.1f} B/candle; "
        f"document schema {doc_file / 1e6:.2f} MB = {doc_file / n:.1f} B/candle; "
        f"ratio {ours_file / doc_file:.1%}"
    )
    print(
        f"  candle storage only (dbstat): ours candle table {ours_candles / n:.1f} B/candle; "
        f"document historical_data + PK index + 2 indexes {doc_candles / n:.1f} B/candle; "
        f"ratio {ours_candles / doc_candles:.1%}"
    )
    for name in ("historical_data", "sqlite_autoindex_historical_data_1", "idx_historical_date",
                 "idx_historical_instrument"):  # fmt: skip
        print(f"    document {name}: {dbstat(doc, (name,)) / n:.1f} B/candle")
    ratio = ours_file / doc_file
    print(
        f"target ours <= 40% of the document's (whole file): {'PASS' if ratio <= 0.4 else 'FAIL'}"
    )
    if "--breakdown" in sys.argv:
        breakdown(ours, n)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ratio <= 0.4 else 1


if __name__ == "__main__":
    sys.exit(main())
