"""JSON: the export document's hierarchy, written piece by piece (never built in memory).

    {"metadata": {"exported_at", "instruments", "format": "OpenAlgo", "version": "1.0"},
     "data": {UNDERLYING: {EXPIRY: [{"openalgo_symbol", "trading_symbol", "strike",
                                      "option_type", "historical_data": [CANDLE, ...]}]}}}

UNDERLYING is the instrument's name with ``_`` (``Nifty_50``), EXPIRY ``YYYY-MM-DD``; a
CANDLE is ``{"timestamp", "open", "high", "low", "close", "volume", "oi"}``. Each contract also
names its OpenAlgo ``exchange`` (NFO, BFO).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.query import SelectedContract
from expirytrack_desktop.timeutil import IST


def strike_json(strike: float | None) -> int | float | None:
    if strike is None:
        return None
    return int(strike) if float(strike).is_integer() else strike


def contract_head(c: SelectedContract, include_metadata: bool) -> dict[str, Any]:
    head: dict[str, Any] = {
        "openalgo_symbol": c.symbol,
        "trading_symbol": c.trading_symbol,
        "strike": strike_json(c.strike),
        "option_type": c.contract_type,
        "exchange": c.exchange,
    }
    if include_metadata:
        head.update(underlying=c.underlying, expiry=c.expiry, lot_size=c.lot_size)
    return head


def document_metadata(ctx: WriteContext, instruments: Sequence[str]) -> dict[str, Any]:
    return {
        "exported_at": ctx.exported_at.astimezone(IST).isoformat(timespec="seconds"),
        "instruments": list(instruments),
        "format": "OpenAlgo",
        "version": "1.0",
    }


def json_order(contracts: Sequence[SelectedContract]) -> list[SelectedContract]:
    return sorted(contracts, key=lambda c: (c.underlying_label, c.expiry, c.symbol, c.id))


def write_json(ctx: WriteContext, contracts: Sequence[SelectedContract], path: Path) -> None:
    instruments = list(ctx.options.underlyings)  # as selected, in the order chosen
    dumps = json.dumps
    with ctx.open(path) as out:
        w = out.write
        meta = dumps(document_metadata(ctx, instruments), ensure_ascii=False)
        w(b'{"metadata": ' + meta.encode() + b', "data": {')
        last_u = last_e = None
        for c in json_order(contracts):
            if c.underlying_label != last_u:
                if last_u is not None:
                    w(b"]}, ")
                w(dumps(c.underlying_label).encode() + b": {")
                last_u, last_e = c.underlying_label, None
            if c.expiry != last_e:
                if last_e is not None:
                    w(b"], ")
                w(dumps(c.expiry).encode() + b": [")
                last_e = c.expiry
            else:
                w(b", ")
            head = dumps(contract_head(c, ctx.options.include_metadata), ensure_ascii=False)
            w(head[:-1].encode() + b', "historical_data": [')
            first = True
            for text, rows in ctx.reader.json_chunks(c):
                if not first:
                    w(b",")
                w(text)
                first = False
                ctx.tracker.add_rows(rows, c.symbol)
            w(b"]}")
            ctx.tracker.contract_done(c.symbol)
        if last_u is not None:
            w(b"]}")
        w(b"}}\n")
