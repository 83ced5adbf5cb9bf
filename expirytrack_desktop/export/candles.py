"""Candles of one contract, streamed in bounded chunks and formatted into CSV / JSON text.

Where the time goes (measured, bench/bench_export.py): SQLite's own REAL-to-text and
``strftime`` cost ~0.3 us per value, more than reading the row. So rows come out of SQLite
raw, and text is made in Python through two small memo tables: timestamp -> its
``date,time,ISO`` text (one session has only 375 distinct minutes, shared by every contract)
and price -> ``repr(price)`` (prices are whole ticks, so they repeat). Each row is then one
f-string. Prices print as ``2114.3``, never ``2114.2999999999997``, and ``2115.0`` for a
whole price (as the export document shows); see :func:`price_text`.
The tables are cleared when they grow past a bound, so memory stays flat.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from expirytrack_desktop.export.query import SelectedContract, candle_sql
from expirytrack_desktop.timeutil import ist_iso

MEMO_LIMIT = 200_000  # entries per table (~25 MB at most) before it is cleared


def ts_text(ts: int) -> str:
    """epoch seconds -> ``YYYY-MM-DD,HH:MM:SS,YYYY-MM-DDTHH:MM:SS+05:30`` (IST)."""
    iso = ist_iso(ts)
    return f"{iso[:10]},{iso[11:19]},{iso}"


class _TsText(dict[int, str]):
    """:func:`ts_text`, memoised."""

    def __missing__(self, ts: int) -> str:
        if len(self) >= MEMO_LIMIT:
            self.clear()
        text = self[ts] = ts_text(ts)
        return text


def price_text(price: float) -> str:
    """Shortest text of ``price`` at 15 significant digits, with ``.0`` for a whole number.

    15 digits (what SQLite prints too) hide the noise of a price that was computed rather
    than parsed (``2114.2999999999997`` -> ``2114.3``); a price parsed from the API's JSON
    is unchanged, since no tick price needs more than 15 digits.
    """
    text = f"{price:.15g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


class _PriceText(dict[float, str]):
    """price -> :func:`price_text` (memoised: the formatting is the expensive part)."""

    def __missing__(self, price: float) -> str:
        if len(self) >= MEMO_LIMIT:
            self.clear()
        text = self[price] = price_text(price)
        return text


ISO_AT = len("YYYY-MM-DD,HH:MM:SS,")  # where the ISO timestamp starts in a _TsText value


class CandleReader:
    """Reads the candles of one contract at a time, ``chunk_rows`` rows per step."""

    def __init__(
        self, conn: sqlite3.Connection, iv: int, lo: int, hi: int, chunk_rows: int = 50_000
    ) -> None:
        self.conn = conn
        self.iv, self.lo, self.hi = iv, lo, hi
        self.chunk_rows = chunk_rows
        self.ts_text = _TsText()
        self.price_text = _PriceText()

    def raw_chunks(self, c: SelectedContract) -> Iterator[list[tuple[Any, ...]]]:
        """Rows ``(ts, open, high, low, close, volume, oi)`` in time order, a chunk at a time."""
        cur = self.conn.execute(candle_sql(), (c.id, self.iv, self.lo, self.hi))
        try:
            while rows := cur.fetchmany(self.chunk_rows):
                yield rows
        finally:
            cur.close()

    def csv_chunks(self, c: SelectedContract, suffix: str = "") -> Iterator[tuple[bytes, int]]:
        """(whole CSV lines, row count) per chunk; ``suffix`` is appended to every line."""
        T, P, sym = self.ts_text, self.price_text, c.symbol
        for rows in self.raw_chunks(c):
            text = "".join([
                f"{sym},{T[ts]},{P[o]},{P[h]},{P[lo]},{P[cl]},{v},{oi}{suffix}\n"
                for ts, o, h, lo, cl, v, oi in rows
            ])  # fmt: skip
            yield text.encode(), len(rows)

    def json_chunks(self, c: SelectedContract) -> Iterator[tuple[bytes, int]]:
        """(candle objects joined by commas, row count) per chunk; the caller adds separators."""
        T, P, at = self.ts_text, self.price_text, ISO_AT
        for rows in self.raw_chunks(c):
            text = ",".join([
                f'{{"timestamp":"{T[ts][at:]}","open":{P[o]},"high":{P[h]},"low":{P[lo]},'
                f'"close":{P[cl]},"volume":{v},"oi":{oi}}}'
                for ts, o, h, lo, cl, v, oi in rows
            ])  # fmt: skip
            yield text.encode(), len(rows)
