"""Migration 004's data step: every candle copied into the paise layout (``store/prices.py``),
contract by contract in committed batches, so that it can be stopped at any moment (a kill,
a full disk, a closed laptop) and continues where it stopped when the database is next opened.

The copy goes to ``candle_v4`` beside the old ``candle`` table; after each batch the last
contract id copied is committed in ``kv`` with the batch. When every contract is copied,
``004_compact_prices.sql`` drops the old table and renames the new one (one short step).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# (candles copied so far, candles in all: an estimate from the windows' counts)
MigrateProgress = Callable[[int, int], None]

MARK = "migration_004_copied_through"
BATCH_ROWS = 250_000  # candles per committed batch (~0.5 s of work)

_TABLES = """
CREATE TABLE IF NOT EXISTS candle_v4 (
    contract_id INTEGER NOT NULL,
    interval    INTEGER NOT NULL,
    ts          INTEGER NOT NULL,          -- epoch seconds
    close       INTEGER,                   -- paise; NULL: the prices are in candle_exact
    open        INTEGER,                   -- paise relative to close (open - close)
    high        INTEGER,                   -- paise relative to close (high - close)
    low         INTEGER,                   -- paise relative to close (low - close)
    volume      INTEGER NOT NULL,
    oi          INTEGER NOT NULL,
    PRIMARY KEY (contract_id, interval, ts)
) WITHOUT ROWID;
-- The prices, as sent, of candles with a price that is not a whole number of paise.
CREATE TABLE IF NOT EXISTS candle_exact (
    contract_id INTEGER NOT NULL,
    interval    INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    open        REAL NOT NULL,
    high        REAL NOT NULL,
    low         REAL NOT NULL,
    close       REAL NOT NULL,
    PRIMARY KEY (contract_id, interval, ts)
) WITHOUT ROWID;
"""

_WHOLE = " AND ".join(f"round({c} * 100) / 100.0 = {c}" for c in ("open", "high", "low", "close"))
_COPY = (
    "INSERT OR REPLACE INTO candle_v4 SELECT contract_id, interval, ts, "
    "CAST(round(close * 100) AS INTEGER), "
    "CAST(round(open * 100) - round(close * 100) AS INTEGER), "
    "CAST(round(high * 100) - round(close * 100) AS INTEGER), "
    "CAST(round(low * 100) - round(close * 100) AS INTEGER), volume, oi "
    f"FROM candle WHERE contract_id = ? AND {_WHOLE}"
)
_SIDE = (
    "INSERT OR REPLACE INTO candle_exact SELECT contract_id, interval, ts, open, high, low, "
    f"close FROM candle WHERE contract_id = ? AND NOT ({_WHOLE})"
)
_SIDE_MAIN = (
    "INSERT OR REPLACE INTO candle_v4 SELECT k.contract_id, k.interval, k.ts, NULL, NULL, NULL, "
    "NULL, k.volume, k.oi FROM candle_exact x JOIN candle k ON k.contract_id = x.contract_id "
    "AND k.interval = x.interval AND k.ts = x.ts WHERE x.contract_id = ?"
)


def resuming(conn: sqlite3.Connection) -> bool:
    """True if an earlier run of this step was stopped (its backup was made then)."""
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'candle_v4'"
        ).fetchone()
        is not None
    )


def copy_candles(
    conn: sqlite3.Connection,
    progress: MigrateProgress | None = None,
    *,
    batch_rows: int | None = None,
) -> int:
    """Copy the candles not copied yet (autocommit connection; each batch one transaction of
    about ``batch_rows`` candles, :data:`BATCH_ROWS` by default). Returns the candles copied
    by this call."""
    batch_rows = batch_rows or BATCH_ROWS
    conn.executescript(f"BEGIN IMMEDIATE;{_TABLES}COMMIT;")
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (MARK,)).fetchone()
    last, done = (int(x) for x in row[0].split(":")) if row else (-(2**63), 0)
    total = int(
        conn.execute(
            "SELECT COALESCE(sum(candles), 0) FROM fetch_window WHERE state = 'fetched'"
        ).fetchone()[0]
    )
    copied = 0
    if progress:
        progress(done, max(total, done))
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows: int = 0
            nxt: int | None = last
            while rows < batch_rows:
                found = conn.execute(
                    "SELECT min(contract_id) FROM candle WHERE contract_id > ?", (last,)
                ).fetchone()[0]
                if found is None:
                    nxt = None
                    break
                whole = conn.execute(_COPY, (found,)).rowcount
                rows += whole
                held = conn.execute(
                    "SELECT count(*) FROM candle WHERE contract_id = ?", (found,)
                ).fetchone()[0]
                if held != whole and conn.execute(_SIDE, (found,)).rowcount:
                    rows += conn.execute(_SIDE_MAIN, (found,)).rowcount
                last = found
            done += rows
            conn.execute(
                "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (MARK, f"{last}:{done}")
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        copied += rows
        if progress:
            progress(done, max(total, done))
        if nxt is None:
            return copied
