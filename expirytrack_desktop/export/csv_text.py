"""CSV text that both CSV writers share: the columns, the header, each contract's line end.

``openalgo_symbol,date,time,timestamp,open,high,low,close,volume,oi`` are the export
document's ten columns, unchanged in name and order; ``exchange`` (OpenAlgo's NFO / BFO)
follows them, because OpenAlgo names an instrument by symbol and exchange; ``--metadata``
adds the contract columns after that.
"""

from __future__ import annotations

from expirytrack_desktop.export.options import DEFAULT_CSV_COLUMNS as CSV_COLUMNS
from expirytrack_desktop.export.options import EXCHANGE_COLUMN as EXCHANGE_COLUMN
from expirytrack_desktop.export.options import META_CSV_COLUMNS as META_COLUMNS
from expirytrack_desktop.export.options import ExportOptions, default_csv_columns
from expirytrack_desktop.export.query import SelectedContract

__all__ = ["CSV_COLUMNS", "EXCHANGE_COLUMN", "META_COLUMNS", "header", "options_header"]


def header(include_metadata: bool) -> bytes:
    return (",".join(default_csv_columns(include_metadata)) + "\n").encode()


def options_header(options: ExportOptions) -> bytes:
    """The header line of an export: its custom columns, or the default ones."""
    return (",".join(options.columns_in_force) + "\n").encode()


def field(value: object) -> str:
    text = "" if value is None else str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def meta_suffix(c: SelectedContract) -> str:
    """``,NIFTY,2025-04-24,20400,CE,NIFTY 24 APR 25 20400 CE,75`` (CSV-quoted as needed)."""
    return "," + ",".join(field(v) for v in c.meta_values())


def line_suffix(c: SelectedContract, include_metadata: bool) -> str:
    """What follows ``oi`` on each of the contract's lines: ``,NFO`` (+ the metadata)."""
    return "," + field(c.exchange) + (meta_suffix(c) if include_metadata else "")
