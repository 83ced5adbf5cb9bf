"""OpenAlgo Historify hand-off: candles in the shape Historify's own store and import expect.

Historify (OpenAlgo's local history store, a DuckDB file) keeps every candle in one table,
``market_data (symbol, exchange, interval, timestamp BIGINT epoch seconds, open, high, low,
close DOUBLE, volume, oi BIGINT)`` with the primary key ``(symbol, exchange, interval,
timestamp)``, and stores only the intervals ``1m`` and ``D``. Two ways in:

- **direct load** (``--format historify --out .../historify.duckdb``): the rows are upserted
  into ``market_data`` in ONE transaction (a failure or cancel leaves the database as it
  was; loading twice changes nothing), ``data_catalog`` is brought up to date for every
  (symbol, exchange, interval) touched, and ``symbol_metadata`` gets each contract's
  details. Missing tables are created with Historify's own definitions. Historify must not
  have the file open (DuckDB allows one writing process).
- **files** (``--format historify --out FOLDER``): ``<EXCHANGE>/<SYMBOL>.parquet`` per
  contract, each ``timestamp`` int64 epoch seconds + ``open high low close volume oi`` (what
  its Parquet upload reads; a timestamp type would become 1970 dates there), and
  ``manifest.csv`` listing the symbol, exchange and interval to type beside each upload.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.arrow_np import arrow_of, strings
from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.context import Tracker, WriteContext
from expirytrack_desktop.export.errors import InvalidOptionsError, UnwritableOutputError
from expirytrack_desktop.export.parts import per_contract_names
from expirytrack_desktop.export.query import SelectedContract
from expirytrack_desktop.export.symbols import MONTHS

INTERVALS = {"1minute": "1m", "day": "D"}  # the only intervals Historify stores
DB_SUFFIXES = (".duckdb", ".ddb")

MARKET_DATA_SQL = """CREATE TABLE IF NOT EXISTS market_data (
    symbol VARCHAR NOT NULL, exchange VARCHAR NOT NULL, interval VARCHAR NOT NULL,
    timestamp BIGINT NOT NULL, open DOUBLE NOT NULL, high DOUBLE NOT NULL,
    low DOUBLE NOT NULL, close DOUBLE NOT NULL, volume BIGINT NOT NULL, oi BIGINT DEFAULT 0,
    created_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (symbol, exchange, interval, timestamp))"""
CATALOG_SQL = """CREATE TABLE IF NOT EXISTS data_catalog (
    id INTEGER PRIMARY KEY, symbol VARCHAR NOT NULL, exchange VARCHAR NOT NULL,
    interval VARCHAR NOT NULL, first_timestamp BIGINT, last_timestamp BIGINT,
    record_count BIGINT DEFAULT 0, last_download_at TIMESTAMP,
    UNIQUE (symbol, exchange, interval))"""
METADATA_SQL = """CREATE TABLE IF NOT EXISTS symbol_metadata (
    symbol VARCHAR NOT NULL, exchange VARCHAR NOT NULL, name VARCHAR, expiry VARCHAR,
    strike DOUBLE, lotsize INTEGER, instrumenttype VARCHAR, tick_size DOUBLE,
    last_updated TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (symbol, exchange))"""
_COLUMNS = "symbol, exchange, interval, timestamp, open, high, low, close, volume, oi"
INSERT_SQL = f"INSERT INTO market_data ({_COLUMNS}) SELECT {_COLUMNS} FROM batch"
UPSERT_SQL = f"""{INSERT_SQL}
    ON CONFLICT (symbol, exchange, interval, timestamp) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, oi = excluded.oi"""


def historify_interval(interval: str) -> str:
    """``1minute -> 1m``, ``day -> D``; Historify aggregates every other interval itself."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise InvalidOptionsError(
            f"Historify stores only 1-minute and daily candles, not {interval!r}"
            " (it builds 5m, 15m, 1h ... from 1m)"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_database_target(path: Path) -> bool:
    return path.suffix.lower() in DB_SUFFIXES


def _expiry_text(iso: str) -> str:
    """``2025-04-24 -> 24-APR-25`` (OpenAlgo's master-contract spelling)."""
    d = date.fromisoformat(iso)
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year % 100:02d}"


FILE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "oi")


def _file_bytes(group: CandleGroup) -> list[bytes]:
    """Each contract's Historify Parquet file (zstd), made by the reader threads: int64
    epoch seconds, the rupee prices as the store gives them, volume, oi."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = group.table.rename_columns(list(FILE_COLUMNS))
    out, row = [], 0
    for n in group.counts:
        buf = pa.BufferOutputStream()  # in memory: a write error is raised by the file write
        pq.write_table(table.slice(row, n), buf, compression="zstd")
        out.append(buf.getvalue().to_pybytes())
        row += n
    return out


def write_historify_files(
    ctx: WriteContext, contracts: Sequence[SelectedContract], folder: Path
) -> None:
    """``<EXCHANGE>/<SYMBOL>.parquet`` per contract (int64 epoch seconds) + ``manifest.csv``,
    from one read of them all (export/parts.py)."""
    from expirytrack_desktop.export.csv_format import BackgroundWriter, WholeFiles

    interval = historify_interval(ctx.options.interval)
    manifest = io.StringIO()
    w = csv.writer(manifest, lineterminator="\n")
    w.writerow(["file", "symbol", "exchange", "interval", "rows"])
    names = per_contract_names(contracts, ".parquet", folder=lambda c: c.exchange)
    for exchange in {c.exchange for c in contracts}:
        (folder / exchange).mkdir(exist_ok=True)
    todo = iter(zip(contracts, names, strict=True))
    with BackgroundWriter(WholeFiles(ctx)) as out:
        for group in ctx.groups(contracts, _file_bytes):
            for data, n in zip(group.prepared, group.counts, strict=True):
                c, name = next(todo)
                out.write((folder / name, [data]))
                w.writerow([name, c.symbol, c.exchange, interval, n])
            ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)
    with ctx.open(folder / "manifest.csv") as f:
        f.write(manifest.getvalue().encode())


def load_into_historify(
    ctx: WriteContext, contracts: Sequence[SelectedContract], target: Path
) -> int:
    """Upsert the candles into Historify's DuckDB at ``target``; returns rows written.

    All in one transaction: on any error or cancel nothing of this load stays.
    """
    try:
        import duckdb
    except ImportError:
        raise InvalidOptionsError(
            "loading into a Historify database needs DuckDB: pip install duckdb"
        ) from None
    import pyarrow as pa

    interval = historify_interval(ctx.options.interval)
    try:
        con = duckdb.connect(str(target))
    except duckdb.Error as exc:
        raise UnwritableOutputError(
            f"cannot open Historify database {target}: {_first_line(exc)}"
        ) from None
    try:
        for sql in (MARKET_DATA_SQL, CATALOG_SQL, METADATA_SQL):
            con.execute(sql)
        con.execute("BEGIN TRANSACTION")
        touched = sorted({(c.symbol, c.exchange) for c in contracts})
        symbols, exchanges = [s for s, _ in touched], [e for _, e in touched]
        con.register(
            "touched", pa.table({"symbol": strings(symbols), "exchange": strings(exchanges)})
        )
        try:
            sql = INSERT_SQL if _fresh(con, contracts, touched, interval) else UPSERT_SQL
            n = _load(con, pa, ctx, contracts, interval, sql)
            ctx.tracker.check()
            _update_catalog(con, interval)
            _upsert_metadata(con, contracts)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("touched")
    except duckdb.Error as exc:
        raise UnwritableOutputError(
            f"cannot write Historify database {target}: {_first_line(exc)}"
        ) from None
    finally:
        con.close()
    return n


def _fresh(
    con: Any, contracts: Sequence[SelectedContract], touched: list[Any], interval: str
) -> bool:
    """No row of ours can meet one already there: every contract has its own symbol (on its
    exchange) and the database has no candle of these symbols at this interval. Then a plain
    INSERT does what the upsert would, ~30 % faster."""
    if len(touched) != len(contracts):
        return False
    ((found,),) = con.execute(  # fetchall: DuckDB 2 refuses more work on an unread result
        "SELECT EXISTS (SELECT 1 FROM market_data m JOIN touched t ON m.symbol = t.symbol"
        " AND m.exchange = t.exchange WHERE m.interval = ?)",
        [interval],
    ).fetchall()
    return not found


def _load(
    con: Any,
    pa: Any,
    ctx: WriteContext,
    contracts: Sequence[SelectedContract],
    interval: str,
    sql: str,
) -> int:
    import numpy as np

    tracker: Tracker = ctx.tracker
    n = 0
    for group in ctx.groups(contracts):
        if group.rows:
            which = arrow_of(np.repeat(np.arange(len(group.contracts)), group.counts))
            t = group.table
            batch = pa.table({
                "symbol": strings([c.symbol for c in group.contracts]).take(which),
                "exchange": strings([c.exchange for c in group.contracts]).take(which),
                "interval": pa.repeat(interval, group.rows),
                "timestamp": t.column("ts"),
                **{k: t.column(k) for k in ("open", "high", "low", "close", "volume", "oi")},
            })  # fmt: skip
            con.register("batch", batch)
            con.execute(sql)
            con.unregister("batch")
        n += group.rows
        tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)
    return n


def _update_catalog(con: Any, interval: str) -> None:
    """data_catalog: first/last timestamp and count per (symbol, exchange, interval) of the
    registered ``touched`` symbols, in three statements for all of them (one per symbol took
    ~3 ms: 13 s for 3,872)."""
    con.execute(
        "CREATE TEMP TABLE catalog_new AS SELECT m.symbol, m.exchange,"
        " min(m.timestamp) AS first_ts, max(m.timestamp) AS last_ts, count(*) AS n"
        " FROM market_data m JOIN touched t ON m.symbol = t.symbol AND m.exchange = t.exchange"
        " WHERE m.interval = ? GROUP BY m.symbol, m.exchange",
        [interval],
    )
    con.execute(
        "UPDATE data_catalog SET first_timestamp = n.first_ts, last_timestamp = n.last_ts,"
        " record_count = n.n, last_download_at = now() FROM catalog_new n"
        " WHERE data_catalog.symbol = n.symbol AND data_catalog.exchange = n.exchange"
        " AND data_catalog.interval = ?",
        [interval],
    )
    # Historify numbers catalog rows itself (no sequence): max + 1, in symbol order
    con.execute(
        "INSERT INTO data_catalog (id, symbol, exchange, interval, first_timestamp,"
        " last_timestamp, record_count, last_download_at)"
        " SELECT (SELECT coalesce(max(id), 0) FROM data_catalog)"
        " + row_number() OVER (ORDER BY n.symbol, n.exchange),"
        " n.symbol, n.exchange, ?, n.first_ts, n.last_ts, n.n, now() FROM catalog_new n"
        " WHERE NOT EXISTS (SELECT 1 FROM data_catalog d WHERE d.symbol = n.symbol"
        " AND d.exchange = n.exchange AND d.interval = ?)",
        [interval, interval],
    )
    con.execute("DROP TABLE catalog_new")


def _upsert_metadata(con: Any, contracts: Sequence[SelectedContract]) -> None:
    """symbol_metadata: each contract's details, in one statement (the last contract of a
    symbol and exchange wins, as row-by-row upserts did)."""
    import numpy as np
    import pyarrow as pa

    last = {(c.symbol, c.exchange): c for c in contracts}
    cs = list(last.values())
    strikes = [c.strike for c in cs]
    lots = [c.lot_size for c in cs]
    rows = pa.table({
        "symbol": strings([c.symbol for c in cs]),
        "exchange": strings([c.exchange for c in cs]),
        "name": strings([c.trading_symbol or c.symbol for c in cs]),
        "expiry": strings([_expiry_text(c.expiry) for c in cs]),
        "strike": arrow_of(np.array([v or 0.0 for v in strikes], np.float64),
                           np.array([v is not None for v in strikes])),
        "lotsize": arrow_of(np.array([v or 0 for v in lots], np.int64),
                            np.array([v is not None for v in lots])),
        "instrumenttype": strings([c.contract_type for c in cs]),
    })  # fmt: skip
    con.register("meta_new", rows)
    try:
        con.execute(
            "INSERT INTO symbol_metadata (symbol, exchange, name, expiry, strike, lotsize,"
            " instrumenttype) SELECT symbol, exchange, name, expiry, strike, lotsize,"
            " instrumenttype FROM meta_new"
            " ON CONFLICT (symbol, exchange) DO UPDATE SET name = excluded.name,"
            " expiry = excluded.expiry, strike = excluded.strike, lotsize = excluded.lotsize,"
            " instrumenttype = excluded.instrumenttype, last_updated = now()"
        )
    finally:
        con.unregister("meta_new")
