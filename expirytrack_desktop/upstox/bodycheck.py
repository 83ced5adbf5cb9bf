"""Complete-body check of a raw candle response, whose parse is handed on to the store.

The fast ingest path must tell a complete success body from a truncated or malformed one (to
retry it like any transient fault). Parsing it with ``orjson`` (~0.4 us per candle here) is
that check, and the parsed candle rows, exactly as the API sent them, go on to the store
(``Database.store_window_json``), which binds them to one ``executemany`` and lets SQLite
convert the times and check the values: the body is parsed once. Without orjson the stdlib
parser does the same, ~3x slower.
"""

from __future__ import annotations

from typing import Any

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency; plain json still works
    from json import loads as _loads


class CandleBody(bytes):
    """The raw bytes of a complete candle success answer, with ``rows``: its candle array as
    parsed by the check (lists ``[time, open, high, low, close, volume, oi]``, newest first,
    values not yet checked: the store checks them as it inserts)."""

    rows: list[Any]

    def __new__(cls, content: bytes, rows: list[Any]) -> CandleBody:
        self = super().__new__(cls, content)
        self.rows = rows
        return self


def candle_body(content: bytes) -> CandleBody | None:
    """``content`` with its parsed candle rows iff it is one whole JSON document
    ``{"status": "success", "data": {"candles": [...]}}`` (any key order and whitespace);
    None for anything else (truncated, malformed, not UTF-8, another shape)."""
    try:
        body = _loads(content)
    except ValueError:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        return None
    if not isinstance(body, dict) or body.get("status") != "success":
        return None
    data = body.get("data")
    rows = data.get("candles") if isinstance(data, dict) else None
    return CandleBody(content, rows) if isinstance(rows, list) else None


def is_candle_body(content: bytes) -> bool:
    """True iff ``content`` is one whole candle success document (see :func:`candle_body`)."""
    return candle_body(content) is not None
