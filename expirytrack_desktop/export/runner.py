"""``run_export``: selection -> streamed file(s), atomically renamed, recorded in history."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import BinaryIO

from expirytrack_desktop.export.arrow_read import (
    ArrowCandleSource,
    adbc_available,
    group_rows_for,
    warm_up,
)
from expirytrack_desktop.export.atomic import AtomicOutput, os_error_to_export_error
from expirytrack_desktop.export.candles import CandleReader
from expirytrack_desktop.export.context import Tracker, WriteContext
from expirytrack_desktop.export.csv_format import write_csv, write_csv_files
from expirytrack_desktop.export.db import DbSource, connect_readonly, reading
from expirytrack_desktop.export.errors import DatabaseError, NoDataError
from expirytrack_desktop.export.heap import export_slack
from expirytrack_desktop.export.historify import (
    is_database_target,
    load_into_historify,
    write_historify_files,
)
from expirytrack_desktop.export.history import record_export
from expirytrack_desktop.export.json_format import write_json, write_json_files
from expirytrack_desktop.export.options import ExportOptions
from expirytrack_desktop.export.parquet_format import (
    write_parquet,
    write_parquet_dataset,
    write_parquet_files,
)
from expirytrack_desktop.export.parts import per_contract_names
from expirytrack_desktop.export.progress import ExportProgress, ExportResult
from expirytrack_desktop.export.query import (
    SelectedContract,
    rows_per_contract,
    select_contracts,
    ts_bounds,
)
from expirytrack_desktop.export.zip_format import write_zip
from expirytrack_desktop.timeutil import now_utc

log = logging.getLogger(__name__)
Opener = Callable[[Path], BinaryIO]


def _open_binary(path: Path) -> BinaryIO:
    # The writer owns and closes it. Not synced before the rename (the mirror's files are):
    # an fsync per file cost CSV +10 %, Parquet +4 %, a file per contract +29 % here, and an
    # export is made again from the database if a power cut tears it (bench/RESULTS.md).
    return open(path, "xb")


def run_export(
    db: DbSource,
    options: ExportOptions,
    out_path: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[ExportProgress], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], datetime] = now_utc,
    record_history: bool = True,
    open_file: Opener = _open_binary,
    chunk_rows: int | None = None,
    unique: bool = False,
    arrow_reader: bool = True,
) -> ExportResult:
    """Export the selection to ``out_path`` (a file, or a folder when
    ``options.output_is_folder``); blocking, meant for a worker thread.

    ``db`` is a database path (opened read-only in the calling thread) or a connection that
    belongs to the calling thread. Data goes to a temporary name beside ``out_path`` and is
    renamed into place only when complete; on any error or ``cancel.set()`` the temporary
    output is removed and an :class:`ExportError` subclass is raised. ``progress`` is called
    in the worker thread. ``open_file`` (tests) opens each output file for binary writing.
    A completed export is added to ``export_history`` (unless ``record_history`` is False).
    ``unique`` (for default names): if ``out_path`` is taken, ``name_2``, ``name_3`` ... is
    used instead (claimed atomically; the result holds the path written).
    ``arrow_reader=False`` reads row by row even when the fast Arrow reader could be used
    (the reference the tests compare the fast path with).
    """
    options.validate()
    final = Path(os.path.abspath(out_path))  # the history (and its clean-up) outlive the cwd
    tracker = Tracker(0, 0, progress, cancel)
    out: AtomicOutput | None = None
    if not (options.format == "historify" and is_database_target(final)):
        out = AtomicOutput(
            final, folder=options.output_is_folder, overwrite=overwrite, unique=unique
        )
    try:
        with export_slack(), reading(db) as conn:
            own_txn = not conn.in_transaction
            if own_txn:  # one snapshot: counts and rows agree while a collector writes
                conn.execute("BEGIN")
            try:
                fast = arrow_reader and _fast_path(db)
                helper = partial(connect_readonly, db) if fast else None  # type: ignore[arg-type]
                warm = partial(_start_imports, options.format) if fast else None
                contracts, lo, hi = _plan(conn, options, clock, tracker, helper, warm)
                if out is not None:  # a taken name: refused before "exporting N rows"
                    out.check()
                tracker.report("counting")
                rows = chunk_rows or group_rows_for(options.format)
                reader = CandleReader(conn, options.interval_minutes, lo, hi, rows)
                arrow = _arrow_source(db, options, lo, hi, rows) if fast else None
                ctx = WriteContext(reader, options, tracker, open_file, clock(), arrow)
                try:
                    if out is None:
                        nbytes, files = _load_historify(ctx, contracts, final), 1
                    else:
                        nbytes, files = _write_atomically(ctx, contracts, out)
                        final = out.final
                finally:
                    ctx.close_streams()  # the reader threads stopped here, not by the GC
            finally:
                if own_txn and conn.in_transaction:
                    conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read the database: {exc}") from None
    return _finish(db, options, final, tracker, nbytes, files, clock, record_history)


def _write_atomically(
    ctx: WriteContext, contracts: Sequence[SelectedContract], out: AtomicOutput
) -> tuple[int, int]:
    """Write under a temporary name, rename into place; (bytes, files) written."""
    with out as tmp:
        try:
            _write(ctx, contracts, tmp)
        except OSError as exc:
            raise os_error_to_export_error(exc, out.final) from None
        ctx.tracker.check()
        ctx.tracker.report("finishing")
        nbytes = _size(tmp)
        out.commit()
    return nbytes, len(ctx.files)


def _finish(
    db: DbSource,
    options: ExportOptions,
    final: Path,
    tracker: Tracker,
    nbytes: int,
    files: int,
    clock: Callable[[], datetime],
    record_history: bool,
) -> ExportResult:
    result = ExportResult(final, tracker.rows_done, nbytes, files)
    if record_history:
        try:
            record_export(db, options, final, result.rows, result.bytes, clock())
        except sqlite3.Error as exc:  # the file is fine; only the history row is missing
            log.warning("export written but not recorded in history: %s", exc)
    return result


def _load_historify(ctx: WriteContext, contracts: Sequence[SelectedContract], final: Path) -> int:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        load_into_historify(ctx, contracts, final)
        ctx.tracker.report("finishing")
        return final.stat().st_size
    except OSError as exc:
        raise os_error_to_export_error(exc, final) from None


def _fast_path(db: DbSource) -> bool:
    """The ADBC reader can read ``db`` (a file; a caller's own connection is read with it)."""
    return not isinstance(db, sqlite3.Connection) and adbc_available()


def _start_imports(fmt: str) -> None:
    """Import what the fast path of ``fmt`` needs on a thread: numpy and pyarrow take ~0.13 s
    of CPU, which then overlaps the planning count instead of following it."""
    threading.Thread(target=warm_up, args=(fmt,), name="export-imports", daemon=True).start()


def _arrow_source(
    db: DbSource, options: ExportOptions, lo: int, hi: int, group_rows: int
) -> ArrowCandleSource:
    """The ADBC reader for a database file."""
    assert not isinstance(db, sqlite3.Connection)
    return ArrowCandleSource(Path(db), options.interval_minutes, lo, hi, group_rows)


def _plan(
    conn: sqlite3.Connection,
    options: ExportOptions,
    clock: Callable[[], datetime],
    tracker: Tracker,
    helper: Callable[[], sqlite3.Connection] | None = None,
    warm: Callable[[], None] | None = None,
) -> tuple[list[SelectedContract], int, int]:
    """The selected contracts with their candle counts, and the time range. ``warm`` starts
    after the selection and before the count: the imports it starts hold the GIL, which the
    selection's rows would each wait for, while the count needs it only at its start and
    end."""
    contracts = select_contracts(conn, options)
    if warm is not None:
        warm()
    lo, hi = ts_bounds(options, clock)
    counts = rows_per_contract(conn, contracts, options.interval_minutes, lo, hi, helper)
    rows_total = sum(counts.values())
    if rows_total == 0:
        raise NoDataError(
            f"no {options.interval} candles for the {len(contracts)} selected contracts"
            " in this time range"
        )
    tracker.rows_total = rows_total
    tracker.contracts_total = len(contracts)
    sized = [replace(c, rows=counts[c.id]) if c.id in counts else c for c in contracts]
    return sized, lo, hi


def _write(ctx: WriteContext, contracts: Sequence[SelectedContract], tmp: Path) -> None:
    o = ctx.options
    if o.format == "zip":
        write_zip(ctx, contracts, tmp)
    elif o.format == "historify":
        write_historify_files(ctx, contracts, tmp)
    elif o.format == "parquet" and o.parquet_partitioned:
        write_parquet_dataset(ctx, contracts, tmp)
    elif o.per_contract:
        names = per_contract_names(contracts, f".{o.format}{o.file_suffix}")
        files = [(tmp / n, c) for c, n in zip(contracts, names, strict=True)]
        many = {"csv": write_csv_files, "json": write_json_files, "parquet": write_parquet_files}
        many[o.format](ctx, files)  # one read for every file (export/parts.py)
    else:
        writer = {"csv": write_csv, "json": write_json, "parquet": write_parquet}[o.format]
        writer(ctx, contracts, tmp)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
