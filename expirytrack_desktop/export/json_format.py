"""JSON: the export document's hierarchy, written piece by piece (never built in memory).

    {"metadata": {"exported_at", "instruments", "format": "OpenAlgo", "version": "1.0"},
     "data": {UNDERLYING: {EXPIRY: [{"openalgo_symbol", "trading_symbol", "strike",
                                      "option_type", "historical_data": [CANDLE, ...]}]}}}

UNDERLYING is the instrument's name with ``_`` (``Nifty_50``), EXPIRY ``YYYY-MM-DD``; a
CANDLE is ``{"timestamp", "open", "high", "low", "close", "volume", "oi"}``. Each contract also
names its OpenAlgo ``exchange`` (NFO, BFO).

Two ways to the same bytes: with an Arrow source (a database file and the ADBC driver) the
candles of a group of contracts are made at once (:class:`JsonCandles`, the pieces of
:mod:`.csv_fast`); else row by row (``CandleReader.json_chunks``), the reference the tests
compare the fast path with, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.query import SelectedContract
from expirytrack_desktop.timeutil import IST, IST_OFFSET_SECONDS

if TYPE_CHECKING:
    from expirytrack_desktop.export.arrow_read import CandleGroup


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


class _Glue:
    """The document's text between the candles: brackets, keys and each contract's head.

    What comes before a contract depends only on the contract before it (:meth:`between`),
    so the fast path makes it in the reader threads, in any order."""

    def __init__(self, include_metadata: bool) -> None:
        self.include_metadata = include_metadata
        self.last: SelectedContract | None = None

    def before(self, c: SelectedContract) -> bytes:
        """Everything from the previous contract's end up to this one's first candle."""
        text = self.between(self.last, c)
        self.last = c
        return text

    def between(self, prev: SelectedContract | None, c: SelectedContract) -> bytes:
        """The text between ``prev``'s last candle (None: the document's start) and ``c``'s
        first candle."""
        parts = []
        new_u = prev is None or c.underlying_label != prev.underlying_label
        if new_u:
            if prev is not None:
                parts.append(b"]}, ")
            parts.append(json.dumps(c.underlying_label).encode() + b": {")
        if new_u or c.expiry != prev.expiry:  # type: ignore[union-attr]
            if not new_u:
                parts.append(b"], ")
            parts.append(json.dumps(c.expiry).encode() + b": [")
        else:
            parts.append(b", ")
        head = json.dumps(contract_head(c, self.include_metadata), ensure_ascii=False)
        parts.append(head[:-1].encode() + b', "historical_data": [')
        return b"".join(parts)

    AFTER = b"]}"  # after a contract's candles

    def end(self, last: SelectedContract | None = None) -> bytes:
        """The document's end after ``last`` (default: the last :meth:`before`)."""
        last = last or self.last
        return (b"]}" if last is not None else b"") + b"}}\n"


class JsonCandles:
    """A group's candles (and the glue between its contracts) as JSON, made at once.

    Each candle ``{"timestamp":"…","open":…,…,"oi":…}`` is 16 pieces (:mod:`.text_views`);
    a contract's first candle starts with the glue before it, its last ends with ``]}``.
    """

    def __init__(self) -> None:
        from expirytrack_desktop.export.csv_fast import CsvFormatter

        self.pieces = CsvFormatter(["open"])  # its number, price, day and clock pieces

    def text(self, group: CandleGroup, before: list[bytes]) -> list[Any]:
        """Buffers to write in order: the candles of the group, then any glue left over
        (contracts without candles at the end of the group)."""
        import numpy as np

        f, tv = self.pieces, self.pieces.tv
        pending = b""
        leads: list[bytes] = []
        for pre, n in zip(before, group.counts, strict=True):
            if n:
                leads.append(pending + pre + b'{"timestamp":"')
                pending = b""
            else:
                pending += pre + _Glue.AFTER
        n = group.rows
        if not n:
            return [pending]
        counts = np.array(group.counts)
        ends = np.cumsum(counts)
        firsts = (ends - counts)[counts > 0]
        views = np.empty((16, n, 2), np.uint64)
        buffers = tv.Buffers()
        none = np.zeros(n, bool)

        def const(k: int, text: bytes) -> None:
            views[k] = tv.views_of([text], buffers)[0]

        const(0, b',{"timestamp":"')
        views[0][firsts] = tv.views_of(leads, buffers)
        day_index, day_texts = f.days(group.ts)
        np.take(
            tv.views_of([t + b"T" for t in day_texts], buffers), day_index, axis=0, out=views[1]
        )
        second = (group.ts + IST_OFFSET_SECONDS) % 86_400
        tv.inline_views(tv.Piece(f.clock[second], np.zeros(n, np.uint64), np.full(n, 8)), views[2])
        const(3, b'+05:30","open":')
        k = 4
        for i, key in enumerate((b"high", b"low", b"close", None)):
            f.put(views, k, *_odd(f.price(group, i, True), none), buffers)
            if key is not None:
                const(k + 1, b',"' + key + b'":')
            k += 2
        const(11, b',"volume":')
        f.put(views, 12, *_odd(f.number(group.volume, True), none), buffers)
        const(13, b',"oi":')
        f.put(views, 14, *_odd(f.number(group.oi, True), none), buffers)
        const(15, b"}")
        views[15][ends[counts > 0] - 1] = tv.views_of([b"}" + _Glue.AFTER], buffers)[0]
        return [tv.gather(views, buffers), pending]


def _odd(made: tuple[Any, Any, Any], none: Any) -> tuple[Any, Any, Any]:
    piece, odd, texts = made
    return piece, odd | none, texts


def write_json(ctx: WriteContext, contracts: Sequence[SelectedContract], path: Path) -> None:
    instruments = list(ctx.options.underlyings)  # as selected, in the order chosen
    ordered = json_order(contracts)
    with ctx.open(path) as out:
        meta = json.dumps(document_metadata(ctx, instruments), ensure_ascii=False)
        out.write(b'{"metadata": ' + meta.encode() + b', "data": {')
        glue = _Glue(ctx.options.include_metadata)
        if ctx.arrow is not None:
            _write_fast(ctx, out, ordered, glue)
        else:
            _write_reference(ctx, out, ordered, glue)
        out.write(glue.end(ordered[-1] if ordered else None))


def write_json_files(ctx: WriteContext, files: Sequence[tuple[Path, SelectedContract]]) -> None:
    """One JSON document per contract (``per_contract``): from one read when the fast path
    writes, each contract's text made by the reader threads, each file written on a thread."""
    from expirytrack_desktop.export.csv_format import BackgroundWriter, WholeFiles

    if ctx.arrow is None:
        for path, c in files:
            write_json(ctx, [c], path)
        return
    instruments = list(ctx.options.underlyings)
    meta = json.dumps(document_metadata(ctx, instruments), ensure_ascii=False)
    head = b'{"metadata": ' + meta.encode() + b', "data": {'
    glue = _Glue(ctx.options.include_metadata)
    candles = JsonCandles()

    def texts(group: CandleGroup) -> list[list[Any]]:
        return [
            [head, *candles.text(one, [glue.between(None, one.contracts[0])]),
             glue.end(one.contracts[0])]
            for one in group.split()
        ]  # fmt: skip

    paths = iter(files)
    with BackgroundWriter(WholeFiles(ctx)) as out:
        for group in ctx.groups([c for _, c in files], texts):
            for pieces in group.prepared:
                out.write((next(paths)[0], pieces))
            ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)


def _write_fast(
    ctx: WriteContext, out: BinaryIO, contracts: list[SelectedContract], glue: _Glue
) -> None:
    """Each group's text (glue included) is made by the reader threads."""
    from expirytrack_desktop.export.csv_format import BackgroundWriter

    assert ctx.arrow is not None
    candles = JsonCandles()
    prev = dict(zip((c.id for c in contracts[1:]), contracts, strict=False))

    def text(group: CandleGroup) -> list[Any]:
        return candles.text(group, [glue.between(prev.get(c.id), c) for c in group.contracts])

    with BackgroundWriter(out) as writer:
        for group in ctx.groups(contracts, text):
            for buf in group.prepared:
                writer.write(buf)
            ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)


def _write_reference(
    ctx: WriteContext, out: BinaryIO, contracts: list[SelectedContract], glue: _Glue
) -> None:
    """Row by row in Python: the reference the tests compare the fast path with."""
    w = out.write
    for c in contracts:
        w(glue.before(c))
        first = True
        for text, rows in ctx.reader.json_chunks(c):
            if not first:
                w(b",")
            w(text)
            first = False
            ctx.tracker.add_rows(rows, c.symbol)
        w(glue.AFTER)
        ctx.tracker.contract_done(c.symbol)
