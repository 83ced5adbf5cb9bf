"""Candles of one contract, streamed in bounded chunks and formatted by SQLite.

Formatting text in Python row by row is what makes a naive exporter slow. Here SQLite builds
each output line in C: one ``strftime`` gives date, time and the ISO timestamp at once, and
SQLite's REAL-to-text conversion (15 significant digits) prints ``2114.3`` rather than
``2114.2999999999997`` and ``2115.0`` for a whole price. Python only joins chunks of lines.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from expirytrack_desktop.export.query import SelectedContract
from expirytrack_desktop.timeutil import IST_OFFSET_SECONDS

_WHERE = "FROM candle WHERE contract_id = :cid AND interval = :iv AND ts >= :lo AND ts < :hi"
_IST = f"ts + {IST_OFFSET_SECONDS}, 'unixepoch'"

CSV_LINE_SQL = f"""
SELECT :prefix || strftime('%Y-%m-%d,%H:%M:%S,%Y-%m-%dT%H:%M:%S+05:30', {_IST})
       || ',' || open || ',' || high || ',' || low || ',' || close
       || ',' || volume || ',' || oi || :suffix
{_WHERE} ORDER BY ts"""

JSON_ROW_SQL = f"""
SELECT strftime('{{"timestamp":"%Y-%m-%dT%H:%M:%S+05:30","open":', {_IST})
       || open || ',"high":' || high || ',"low":' || low || ',"close":' || close
       || ',"volume":' || volume || ',"oi":' || oi || '}}'
{_WHERE} ORDER BY ts"""

RAW_SQL = f"SELECT ts, open, high, low, close, volume, oi {_WHERE} ORDER BY ts"


class CandleReader:
    """Reads the candles of one contract at a time, ``chunk_rows`` rows per step."""

    def __init__(
        self, conn: sqlite3.Connection, iv: int, lo: int, hi: int, chunk_rows: int = 50_000
    ) -> None:
        self.conn = conn
        self.params = {"iv": iv, "lo": lo, "hi": hi}
        self.chunk_rows = chunk_rows

    def _chunks(self, sql: str, params: dict[str, object]) -> Iterator[list[tuple]]:
        cur = self.conn.execute(sql, {**self.params, **params})
        try:
            while rows := cur.fetchmany(self.chunk_rows):
                yield rows
        finally:
            cur.close()

    def csv_chunks(self, c: SelectedContract, suffix: str = "") -> Iterator[tuple[str, int]]:
        """(text of whole CSV lines, row count) per chunk; every line ends with a newline."""
        params = {"cid": c.id, "prefix": c.symbol + ",", "suffix": suffix}
        for rows in self._chunks(CSV_LINE_SQL, params):
            yield "\n".join([r[0] for r in rows]) + "\n", len(rows)

    def json_chunks(self, c: SelectedContract) -> Iterator[tuple[str, int]]:
        """(JSON objects joined by commas, row count) per chunk; the caller adds separators."""
        for rows in self._chunks(JSON_ROW_SQL, {"cid": c.id}):
            yield ",".join([r[0] for r in rows]), len(rows)

    def raw_chunks(self, c: SelectedContract) -> Iterator[list[tuple]]:
        """Rows ``(ts, open, high, low, close, volume, oi)`` for typed formats."""
        yield from self._chunks(RAW_SQL, {"cid": c.id})
