"""Parquet: typed columns for pandas / Polars / DuckDB / Spark, one file or a hive dataset.

pyarrow is imported inside the functions: it costs ~0.3 s and tens of MB at start-up, and
only a Parquet export needs it.

Columns: ``openalgo_symbol`` (dictionary string), ``timestamp`` (milliseconds, zone
``Asia/Kolkata``), ``open high low close`` (float64), ``volume oi`` (int64), ``exchange``
(dictionary string: NFO, BFO); with metadata also ``underlying``,
``expiry`` (date32), ``strike`` (float64, null for futures), ``option_type``,
``trading_symbol``, ``lot_size`` (int64). A partitioned dataset keeps ``underlying`` and
``expiry`` in the folder names (``underlying=NIFTY/expiry=2025-04-24/part-0.parquet``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from expirytrack_desktop.export.arrow_np import arrow_of, strings
from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.query import SelectedContract

ROW_GROUP_ROWS = 250_000  # ~15 MB of column data in memory per row group
# The zone every reader understands. A fixed offset ("+05:30") makes Polars panic ("unable to
# parse time zone"); a named zone is read by Polars, DuckDB, pandas, pyarrow and Spark alike.
TZ = "Asia/Kolkata"
# Milliseconds: Parquet has no seconds unit, Spark rejects nanoseconds, and the file says
# TIMESTAMP(isAdjustedToUTC=true, MILLIS), which Spark reads as its TimestampType (an instant).
TS_UNIT = "ms"


def _schema(pa: Any, include_metadata: bool, partitioned: bool) -> Any:
    fields = [
        ("openalgo_symbol", pa.dictionary(pa.int32(), pa.string())),
        ("timestamp", pa.timestamp(TS_UNIT, tz=TZ)),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
        ("oi", pa.int64()),
        ("exchange", pa.dictionary(pa.int32(), pa.string())),
    ]
    if include_metadata:
        if not partitioned:
            fields += [
                ("underlying", pa.dictionary(pa.int32(), pa.string())),
                ("expiry", pa.date32()),
            ]
        fields += [
            ("strike", pa.float64()),
            ("option_type", pa.dictionary(pa.int32(), pa.string())),
            ("trading_symbol", pa.dictionary(pa.int32(), pa.string())),
            ("lot_size", pa.int64()),
        ]
    return pa.schema(fields)


class _Spool:
    """The sink pyarrow writes to: it only gathers bytes, and never fails.

    Our code then copies them to the real file after each row group. So a write error (a
    full disk) is raised in Python, not inside pyarrow's C++ writer, which would otherwise
    be left half-closed, try to write its footer again when collected, and leave an
    exception pending in the interpreter.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.closed = False

    def write(self, data: Any) -> int:
        mv = memoryview(data)
        self.buf += mv
        self.pos += mv.nbytes
        return mv.nbytes

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain_to(self, out: Any) -> None:
        if self.buf:
            out.write(bytes(self.buf))
            self.buf.clear()


def typed_candles(group: CandleGroup) -> Any:
    """The group's own columns as the file types them (``timestamp`` .. ``oi``); run by the
    reader threads (``ctx.groups``' ``prepare``), so the conversions share the two cores.
    Every column is its own copy: a view would keep the reader's whole table alive in the
    row group being gathered (memory)."""
    import pyarrow as pa

    ts = arrow_of(group.ts * 1000).view(pa.timestamp(TS_UNIT, tz=TZ))
    prices = [arrow_of(group.rupees(i)) for i in range(4)]
    counts = [arrow_of(group.volume.copy()), arrow_of(group.oi.copy())]
    return pa.Table.from_arrays([ts, *prices, *counts], names=list(CANDLE_COLUMNS))


CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "oi")


def _days(iso: str) -> int:
    """Days since 1970-01-01 (Arrow's date32) of a ``YYYY-MM-DD`` date."""
    return (date.fromisoformat(iso) - _EPOCH).days


_EPOCH = date(1970, 1, 1)


class _Batch:
    """Candle groups gathered until a row group is full, then made one typed table. Only
    what the table needs is kept of each group (not its numpy columns: memory)."""

    def __init__(self) -> None:
        self.contracts: list[SelectedContract] = []
        self.counts: list[int] = []
        self.parts: list[Any] = []
        self.rows = 0

    def add(self, group: CandleGroup) -> None:
        self.contracts += group.contracts
        self.counts += group.counts
        self.parts.append(group.prepared)
        self.rows += group.rows

    def __len__(self) -> int:
        return self.rows

    def table(self, pa: Any, schema: Any) -> Any:
        import numpy as np

        cs, counts, candles = self.contracts, self.counts, pa.concat_tables(self.parts)
        idx = arrow_of(np.repeat(np.arange(len(cs), dtype=np.int32), counts))
        self.contracts, self.counts, self.parts, self.rows = [], [], [], 0

        def per_contract(values: list[Any], dtype: str) -> Any:
            valid = np.array([v is not None for v in values])
            plain = np.array([0 if v is None else v for v in values], dtype)
            return arrow_of(plain, valid).take(idx)

        def dict_col(values: list[Any]) -> Any:
            uniq = list(dict.fromkeys(values))
            pos = {v: i for i, v in enumerate(uniq)}
            codes = arrow_of(np.array([pos[v] for v in values], np.int32)).take(idx)
            return pa.DictionaryArray.from_arrays(codes, strings(uniq))

        arrays: dict[str, Any] = {name: candles.column(name) for name in CANDLE_COLUMNS}
        arrays.update(
            openalgo_symbol=dict_col([c.symbol for c in cs]),
            exchange=dict_col([c.exchange for c in cs]),
        )
        if "strike" in schema.names:
            arrays.update(
                underlying=dict_col([c.underlying for c in cs]),
                expiry=per_contract([_days(c.expiry) for c in cs], "int32").view(pa.date32()),
                strike=per_contract([c.strike for c in cs], "float64"),
                option_type=dict_col([c.contract_type for c in cs]),
                trading_symbol=dict_col([c.trading_symbol for c in cs]),
                lot_size=per_contract([c.lot_size for c in cs], "int64"),
            )
        columns = [arrays[n] for n in schema.names]
        chunked = [c if isinstance(c, pa.ChunkedArray) else pa.chunked_array([c]) for c in columns]
        return pa.Table.from_arrays(chunked, schema=schema)


class _RowGroups:
    """Encodes row groups on the background writer's thread (pyarrow releases the GIL), then
    copies the spooled bytes to the file: the next groups are gathered meanwhile."""

    def __init__(self, writer: Any, spool: _Spool, raw: Any) -> None:
        self.writer, self.spool, self.raw = writer, spool, raw

    def write(self, table: Any) -> None:
        self.writer.write_table(table)
        self.spool.drain_to(self.raw)


def write_parquet(
    ctx: WriteContext,
    contracts: Sequence[SelectedContract],
    path: Path,
    *,
    partitioned: bool = False,
) -> None:
    """One Parquet file holding ``contracts`` in order, in row groups of ~250k rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from expirytrack_desktop.export.csv_format import BackgroundWriter

    schema = _schema(pa, ctx.options.include_metadata, partitioned)
    spool = _Spool()
    with ctx.open(path) as raw:
        o = ctx.options
        writer = pq.ParquetWriter(
            spool, schema, compression=o.codec, compression_level=o.compression_level
        )
        batch = _Batch()
        with BackgroundWriter(_RowGroups(writer, spool, raw), waiting=1) as row_groups:
            for group in ctx.groups(contracts, typed_candles):
                batch.add(group)
                ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)
                if len(batch) >= ROW_GROUP_ROWS:
                    row_groups.write(batch.table(pa, schema))
            if len(batch):
                row_groups.write(batch.table(pa, schema))
        writer.close()
        spool.drain_to(raw)


def write_parquet_dataset(
    ctx: WriteContext, contracts: Sequence[SelectedContract], folder: Path
) -> None:
    """Hive-partitioned dataset: ``underlying=<symbol>/expiry=<date>/part-0.parquet``."""
    key = lambda c: (c.underlying, c.expiry)  # noqa: E731
    for (underlying, expiry), group in itertools.groupby(sorted(contracts, key=key), key=key):
        part = folder / f"underlying={quote(underlying, safe='')}" / f"expiry={expiry}"
        part.mkdir(parents=True, exist_ok=True)
        members = sorted(group, key=lambda c: (c.symbol, c.id))
        write_parquet(ctx, members, part / "part-0.parquet", partitioned=True)
