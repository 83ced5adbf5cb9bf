"""CSV: ``openalgo_symbol,date,time,timestamp,open,high,low,close,volume,oi,exchange`` (+ metadata).

The first ten columns are the export document's, unchanged in name and order; ``exchange``
(OpenAlgo's NFO / BFO) follows them, because OpenAlgo names an instrument by symbol and
exchange.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.query import SelectedContract
from expirytrack_desktop.export.symbols import format_strike

CSV_COLUMNS: tuple[str, ...] = (
    "openalgo_symbol", "date", "time", "timestamp",
    "open", "high", "low", "close", "volume", "oi",
)  # fmt: skip
META_COLUMNS: tuple[str, ...] = (
    "underlying", "expiry", "strike", "option_type", "trading_symbol", "lot_size",
)  # fmt: skip


EXCHANGE_COLUMN = "exchange"


def header(include_metadata: bool) -> bytes:
    cols = (*CSV_COLUMNS, EXCHANGE_COLUMN) + (META_COLUMNS if include_metadata else ())
    return (",".join(cols) + "\n").encode()


def _field(value: object) -> str:
    text = "" if value is None else str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def meta_values(c: SelectedContract) -> tuple[object, ...]:
    strike = None if c.strike is None else format_strike(c.strike)
    return (c.underlying, c.expiry, strike, c.contract_type, c.trading_symbol, c.lot_size)


def meta_suffix(c: SelectedContract) -> str:
    """``,NIFTY,2025-04-24,20400,CE,NIFTY 24 APR 25 20400 CE,75`` (CSV-quoted as needed)."""
    return "," + ",".join(_field(v) for v in meta_values(c))


def line_suffix(c: SelectedContract, include_metadata: bool) -> str:
    """What follows ``oi`` on each of the contract's lines: ``,NFO`` (+ the metadata)."""
    return "," + _field(c.exchange) + (meta_suffix(c) if include_metadata else "")


def write_contract_rows(ctx: WriteContext, out: BinaryIO, c: SelectedContract) -> int:
    """Append one contract's lines to an open CSV stream; returns its row count."""
    suffix = line_suffix(c, ctx.options.include_metadata)
    n = 0
    for text, rows in ctx.reader.csv_chunks(c, suffix):
        out.write(text)
        n += rows
        ctx.tracker.add_rows(rows, c.symbol)
    ctx.tracker.contract_done(c.symbol)
    return n


def write_csv(ctx: WriteContext, contracts: Sequence[SelectedContract], path: Path) -> None:
    """One CSV holding ``contracts`` in the given (symbol) order."""
    with ctx.open(path) as out:
        out.write(header(ctx.options.include_metadata))
        for c in contracts:
            write_contract_rows(ctx, out, c)
