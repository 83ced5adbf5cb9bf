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

import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from expirytrack_desktop.export.arrow_np import arrow_of, strings
from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.parts import Parts
from expirytrack_desktop.export.query import SelectedContract

ROW_GROUP_ROWS = 250_000  # ~15 MB of column data in memory per row group
# The zone every reader understands. A fixed offset ("+05:30") makes Polars panic ("unable to
# parse time zone"); a named zone is read by Polars, DuckDB, pandas, pyarrow and Spark alike.
TZ = "Asia/Kolkata"
# Milliseconds: Parquet has no seconds unit, Spark rejects nanoseconds, and the file says
# TIMESTAMP(isAdjustedToUTC=true, MILLIS), which Spark reads as its TimestampType (an instant).
TS_UNIT = "ms"


def _schema(pa: Any, include_metadata: bool, partitioned: bool) -> Any:
    # A candle's own columns are never null: REQUIRED in the file (no definition levels to
    # encode: ~6 % of the encoding's CPU, bench/RESULTS.md); readers see ``not null``.
    fields = [
        pa.field(name, kind, nullable=False)
        for name, kind in [
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

    pyarrow hands each piece over as a new ``bytes`` object: kept as it is (copying it into
    one buffer, then out of it, held the GIL ~15 % of the export's GIL time).
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.pos = 0
        self.closed = False

    def write(self, data: Any) -> int:
        piece = data if isinstance(data, bytes) else bytes(data)  # immutable: safe to keep
        self.chunks.append(piece)
        self.pos += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain_to(self, out: Any) -> None:
        chunks, self.chunks = self.chunks, []
        for piece in chunks:  # the file object buffers the small ones (page headers)
            out.write(piece)


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
    """Candles gathered until a row group is full, then made one typed table. Only what the
    table needs is kept (not a group's numpy columns: memory)."""

    def __init__(self) -> None:
        self.contracts: list[SelectedContract] = []
        self.counts: list[int] = []
        self.parts: list[Any] = []
        self.rows = 0

    def add(self, contracts: list[SelectedContract], counts: list[int], typed: Any) -> None:
        self.contracts += contracts
        self.counts += counts
        self.parts.append(typed)
        self.rows += typed.num_rows

    def __len__(self) -> int:
        return self.rows

    def table(self, pa: Any, schema: Any) -> Any:
        import numpy as np

        cs, counts, candles = self.contracts, self.counts, pa.concat_tables(self.parts)
        self.contracts, self.counts, self.parts, self.rows = [], [], [], 0

        def per_contract(values: list[Any], dtype: str) -> Any:  # a contract's value per row
            valid = np.repeat(np.array([v is not None for v in values]), counts)
            plain = np.array([0 if v is None else v for v in values], dtype)
            return arrow_of(np.repeat(plain, counts), valid)

        def dict_col(values: list[Any]) -> Any:
            uniq = list(dict.fromkeys(values))
            pos = {v: i for i, v in enumerate(uniq)}
            codes = np.repeat(np.array([pos[v] for v in values], np.int32), counts)
            # the codes are positions in ``uniq`` by construction: no bounds to check per row
            return pa.DictionaryArray.from_arrays(arrow_of(codes), strings(uniq), safe=False)

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


@dataclass(slots=True)
class ParquetPart:
    """One file of a Parquet export: its contracts in order, and what to do once it is
    closed (the mirror's rename into place; run on the writer thread, in file order)."""

    path: Path
    contracts: list[SelectedContract]
    done: Callable[[], None] | None = None


class _Files:
    """The writer thread's side: opens, fills and closes the files in order. Encoding a row
    group releases the GIL, so the next groups are gathered meanwhile."""

    def __init__(self, ctx: WriteContext, schema: Any) -> None:
        self.ctx, self.schema = ctx, schema
        self.raw: Any = None
        self.writer: Any = None
        self.spool = _Spool()

    def write(self, item: tuple[str, Any]) -> None:
        import pyarrow.parquet as pq

        kind, value = item
        if kind == "open":
            o = self.ctx.options
            self.spool = _Spool()
            self.raw = self.ctx.open(value.path)
            self.writer = pq.ParquetWriter(
                self.spool, self.schema, compression=o.codec, compression_level=o.compression_level
            )
        elif kind == "rows":
            self.writer.write_table(value)
            self.spool.drain_to(self.raw)
        else:  # close
            self.writer.close()
            self.spool.drain_to(self.raw)
            raw, self.raw = self.raw, None
            raw.close()
            if value.done is not None:
                value.done()

    def abort(self) -> None:
        """Close a file left open by an error (the caller removes it)."""
        if self.raw is not None:
            with contextlib.suppress(OSError):
                self.raw.close()
            self.raw = None


def write_parquet(
    ctx: WriteContext,
    contracts: Sequence[SelectedContract],
    path: Path,
    *,
    partitioned: bool = False,
) -> None:
    """One Parquet file holding ``contracts`` in order, in row groups of ~250k rows."""
    write_parquet_parts(ctx, [ParquetPart(path, list(contracts))], partitioned=partitioned)


def write_parquet_parts(
    ctx: WriteContext, parts: Sequence[ParquetPart], *, partitioned: bool = False
) -> None:
    """Each part's file, in order, from one read of all their candles (:mod:`.parts`)."""
    import pyarrow as pa

    from expirytrack_desktop.export.csv_format import BackgroundWriter

    schema = _schema(pa, ctx.options.include_metadata, partitioned)
    files = _Files(ctx, schema)
    plan = Parts([p.contracts for p in parts])
    batch = _Batch()
    current = -1
    try:
        with BackgroundWriter(files, waiting=1) as out:

            def reach(k: int) -> None:  # close the current file, open the files up to k
                nonlocal current
                while current < k:
                    if current >= 0:
                        if len(batch):
                            out.write(("rows", batch.table(pa, schema)))
                        out.write(("close", parts[current]))
                    current += 1
                    out.write(("open", parts[current]))

            for group in ctx.groups(plan.contracts, typed_candles):
                for run in plan.runs(group):
                    reach(run.part)
                    typed = group.prepared.slice(run.row, run.rows)
                    batch.add(
                        group.contracts[run.first : run.end],
                        group.counts[run.first : run.end],
                        typed,
                    )
                    if len(batch) >= ROW_GROUP_ROWS:
                        out.write(("rows", batch.table(pa, schema)))
                ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)
            reach(len(parts) - 1)  # files without contracts are written empty
            if current >= 0:
                if len(batch):
                    out.write(("rows", batch.table(pa, schema)))
                out.write(("close", parts[current]))
    finally:
        files.abort()


def write_parquet_files(ctx: WriteContext, files: Sequence[tuple[Path, SelectedContract]]) -> None:
    """A Parquet file per contract (``per_contract``): each file is made whole by the reader
    threads (both cores encode; one writer thread for thousands of small files was the
    bottleneck) and written on a thread, from one read of them all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from expirytrack_desktop.export.csv_format import BackgroundWriter, WholeFiles

    schema = _schema(pa, ctx.options.include_metadata, False)
    o = ctx.options

    def files_of(group: CandleGroup) -> list[bytes]:
        typed, out, row = typed_candles(group), [], 0
        for c, n in zip(group.contracts, group.counts, strict=True):
            batch = _Batch()
            batch.add([c], [n], typed.slice(row, n))
            buf = pa.BufferOutputStream()
            pq.write_table(
                batch.table(pa, schema), buf, row_group_size=ROW_GROUP_ROWS,
                compression=o.codec, compression_level=o.compression_level,
            )  # fmt: skip
            out.append(buf.getvalue().to_pybytes())
            row += n
        return out

    paths = iter(path for path, _ in files)
    with BackgroundWriter(WholeFiles(ctx)) as out:
        for group in ctx.groups([c for _, c in files], files_of):
            for data in group.prepared:
                out.write((next(paths), [data]))
            ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)


def write_parquet_dataset(
    ctx: WriteContext, contracts: Sequence[SelectedContract], folder: Path
) -> None:
    """Hive-partitioned dataset: ``underlying=<symbol>/expiry=<date>/part-0.parquet``."""
    key = lambda c: (c.underlying, c.expiry)  # noqa: E731
    parts = []
    for (underlying, expiry), group in itertools.groupby(sorted(contracts, key=key), key=key):
        part = folder / f"underlying={quote(underlying, safe='')}" / f"expiry={expiry}"
        part.mkdir(parents=True, exist_ok=True)
        members = sorted(group, key=lambda c: (c.symbol, c.id))
        parts.append(ParquetPart(part / "part-0.parquet", members))
    write_parquet_parts(ctx, parts, partitioned=True)
