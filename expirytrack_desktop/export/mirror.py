"""Incremental Parquet mirror: a hive dataset kept in step with the database.

    DIR/underlying=NIFTY/expiry=2025-04-24/part-0.parquet
    DIR/_mirror_state.json          (Spark and DuckDB's ``*/*/*.parquet`` skip it)

Each run fingerprints every (underlying, expiry) partition of the selection in the database
(contracts, candles, first/last minute and sums of prices, volume and OI, one grouped query)
and rewrites only the partitions whose fingerprint changed since the last run: new candles,
corrected candles, new contracts. A partition is one file, written beside its final name and
renamed over it, so a reader sees the old partition or the new one, never half; the state
file is updated (atomically) after each partition, so an interrupted run redoes only what it
had not finished. A partition of a selected underlying whose expiry is no longer selected
(or stored) is removed; other underlyings' partitions are left alone.
Columns as the partitioned Parquet export with metadata (:mod:`.parquet_format`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from expirytrack_desktop.export.arrow_read import (
    ArrowCandleSource,
    adbc_available,
    group_rows_for,
)
from expirytrack_desktop.export.atomic import os_error_to_export_error
from expirytrack_desktop.export.candles import CandleReader
from expirytrack_desktop.export.context import Tracker, WriteContext
from expirytrack_desktop.export.db import DbSource, reading
from expirytrack_desktop.export.errors import DatabaseError, InvalidOptionsError
from expirytrack_desktop.export.fingerprint import partition_prints
from expirytrack_desktop.export.heap import export_slack
from expirytrack_desktop.export.options import ExportOptions
from expirytrack_desktop.export.parquet_format import ParquetPart, write_parquet_parts
from expirytrack_desktop.export.progress import ExportProgress
from expirytrack_desktop.export.query import SelectedContract, select_contracts, ts_bounds
from expirytrack_desktop.fsutil import atomic_write_json, fsync_dir, open_new_synced, sibling_temp
from expirytrack_desktop.fsutil import replace as fs_replace
from expirytrack_desktop.timeutil import now_utc

STATE_FILE = "_mirror_state.json"
PART = "part-0.parquet"


@dataclass(slots=True)
class MirrorResult:
    written: list[str] = field(default_factory=list)  # partitions rewritten ("NIFTY/2025-...")
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    rows: int = 0  # candles written this run


def _rel(underlying: str, expiry: str) -> str:
    return f"underlying={quote(underlying, safe='')}/expiry={expiry}"


def _load_state(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        where = folder / STATE_FILE
        why = f"cannot read the mirror state {where} ({exc})"
        raise InvalidOptionsError(f"{why}; remove it to write every partition again") from None
    return dict(doc.get("partitions", {})) if isinstance(doc, dict) else {}


def _save_state(folder: Path, partitions: dict[str, Any]) -> None:
    atomic_write_json(folder / STATE_FILE, {"version": 1, "partitions": partitions})


def update_mirror(
    db: DbSource,
    options: ExportOptions,
    folder: str | Path,
    *,
    progress: Callable[[ExportProgress], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], datetime] = now_utc,
) -> MirrorResult:
    """Bring the mirror at ``folder`` in step with the selection ``options`` (its format,
    per-contract, partition and CSV column choices are ignored: a mirror is always the
    hive dataset)."""
    options = replace(
        options, format="parquet", per_contract=False, parquet_partitioned=True,
        include_metadata=True, csv_columns=None,
    )  # fmt: skip
    options.validate()
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise InvalidOptionsError(f"{root} exists and is not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error_to_export_error(exc, root / STATE_FILE) from None
    state = _load_state(root)
    result = MirrorResult()
    try:
        with export_slack(), reading(db) as conn:
            conn.execute("BEGIN")  # one snapshot for fingerprints and rows
            try:
                _update(db, conn, options, root, state, result, progress, cancel, clock)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read the database: {exc}") from None
    except OSError as exc:
        raise os_error_to_export_error(exc, root / STATE_FILE) from None
    return result


def _update(
    db: DbSource,
    conn: sqlite3.Connection,
    options: ExportOptions,
    root: Path,
    state: dict[str, Any],
    result: MirrorResult,
    progress: Callable[[ExportProgress], None] | None,
    cancel: threading.Event | None,
    clock: Callable[[], datetime],
) -> None:
    iv = options.interval_minutes
    lo, hi = ts_bounds(options, clock)
    contracts = select_contracts(conn, options)
    wanted = {
        _rel(underlying, expiry): v
        for (underlying, expiry), v in partition_prints(conn, contracts, iv, lo, hi).items()
    }
    stale = {
        rel: v for rel, v in wanted.items()
        if state.get(rel) != v[1] or not (root / rel / PART).is_file()
    }  # fmt: skip
    result.unchanged = len(wanted) - len(stale)
    tracker = Tracker(sum(c.rows for m, _ in stale.values() for c in m), 0, progress, cancel)
    tracker.contracts_total = sum(len(m) for m, _ in stale.values())
    tracker.report("counting")
    reader = CandleReader(conn, iv, lo, hi)
    arrow = None
    if not isinstance(db, sqlite3.Connection) and adbc_available():
        arrow = ArrowCandleSource(Path(db), iv, lo, hi, group_rows_for("parquet"))
    ctx = WriteContext(reader, options, tracker, _open_new, clock(), arrow)
    parts = []
    for rel, (members, fp) in sorted(stale.items()):
        (root / rel).mkdir(parents=True, exist_ok=True)
        tmp = sibling_temp(root / rel / PART, ".part")
        done = partial(_written, root, rel, tmp, fp, members, state, result)
        parts.append(ParquetPart(tmp, members, done))
    try:  # one read for every partition; each renamed into place once complete
        write_parquet_parts(ctx, parts, partitioned=True)
    finally:
        ctx.close_streams()  # the reader threads stopped here, not by the GC
        for p in parts:
            with contextlib.suppress(OSError):
                p.path.unlink()  # what an error left unfinished
    mine = {_rel(c.underlying, "x").rpartition("/")[0] for c in contracts}
    gone = [rel for rel in set(state) - set(wanted) if rel.rpartition("/")[0] in mine]
    for rel in sorted(gone):  # expiries of the selected underlyings no longer there
        part = root / rel
        with contextlib.suppress(FileNotFoundError):
            (part / PART).unlink()
        with contextlib.suppress(OSError):
            part.rmdir()
            part.parent.rmdir()  # the underlying's folder, once empty
        del state[rel]
        _save_state(root, state)
        result.removed.append(rel)
    tracker.report("finishing")


def _written(
    root: Path,
    rel: str,
    tmp: Path,
    fp: Any,
    members: Sequence[SelectedContract],
    state: dict[str, Any],
    result: MirrorResult,
) -> None:
    """A partition's file is complete: rename it over the old one, then record it."""
    fs_replace(tmp, root / rel / PART)
    fsync_dir(root / rel)
    state[rel] = fp
    _save_state(root, state)
    result.written.append(rel)
    result.rows += sum(c.rows for c in members)


def _open_new(path: Path) -> BinaryIO:
    """A partition's file, synced when closed (before its rename): the state then says
    "current" only of a file on disk, never of one a power cut left empty, which no later
    update would rewrite."""
    return open_new_synced(path)
