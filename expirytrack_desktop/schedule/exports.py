"""Exports after a scheduled collection: "after each run, export what is new".

A schedule may name an export preset (``--export-preset``: that export, under a fresh
default name unless the preset names a file) and/or a Parquet mirror folder
(``--export-mirror``: the schedule's instruments, only new or changed partitions rewritten).
They run after the collection, whatever it stored, unless it could not run at all; a failed
export is reported (log, stderr, the run's report) but does not undo the collection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.api import ExportError, InvalidOptionsError, run_export
from expirytrack_desktop.export.history import record_export
from expirytrack_desktop.export.mirror import update_mirror
from expirytrack_desktop.export.options import ExportOptions, default_filename
from expirytrack_desktop.export.presets import get_preset, presets_path
from expirytrack_desktop.export.s3 import export_to_s3, is_s3_url, parse_s3_url, s3_filesystem
from expirytrack_desktop.schedule.model import Schedule


def run_exports(
    schedule: Schedule,
    db_path: Path,
    config_dir: Path,
    export_dir: Path,
    say: Callable[[str], None],
    now: Callable[[], datetime] = datetime.now,
) -> bool:
    """Run the schedule's exports; True when every one succeeded (or there were none)."""
    ok = True
    if schedule.export_mirror:
        try:
            opts = _mirror_options(schedule, db_path)
            r = update_mirror(db_path, opts, Path(schedule.export_mirror).expanduser())
            say(
                f"mirror {schedule.export_mirror}: {len(r.written)} partitions written"
                f" ({r.rows:,} rows), {r.unchanged} unchanged, {len(r.removed)} removed"
            )
        except ExportError as exc:
            say(f"mirror {schedule.export_mirror} failed: {exc}")
            ok = False
    if schedule.export_preset:
        try:
            ok = _preset_export(schedule.export_preset, db_path, config_dir, export_dir,
                                say, now) and ok  # fmt: skip
        except ExportError as exc:
            say(f"export preset {schedule.export_preset!r} failed: {exc}")
            ok = False
    return ok


def check_exports(schedule: Schedule, config_dir: Path) -> None:
    """What the schedule's exports need, checked when it is saved rather than at its first
    run tonight: the preset exists, the mirror folder is not a file (an ExportError)."""
    if schedule.export_preset:
        get_preset(presets_path(config_dir), schedule.export_preset)
    if schedule.export_mirror:
        folder = Path(schedule.export_mirror).expanduser()
        if folder.exists() and not folder.is_dir():
            raise InvalidOptionsError(f"the mirror folder {folder} exists and is not a folder")


def _mirror_options(schedule: Schedule, db_path: Path) -> ExportOptions:
    from datetime import date

    from expirytrack_desktop.export.query import resolve_underlyings

    expiries = None
    if schedule.expiries is not None:
        expiries = tuple(date.fromisoformat(e) for e in schedule.expiries)
    return ExportOptions(
        resolve_underlyings(db_path, schedule.instruments),  # keys, or symbols as typed
        expiries=expiries,
        contract_types=tuple(schedule.types),
        interval=schedule.interval or "1minute",
    )


def _preset_export(
    name: str,
    db_path: Path,
    config_dir: Path,
    export_dir: Path,
    say: Callable[[str], None],
    now: Callable[[], datetime],
) -> bool:
    preset = get_preset(presets_path(config_dir), name)
    filename = default_filename(preset.options, now())
    out: Any = preset.out
    if is_s3_url(out):  # a fresh object under the prefix (or that key) each run
        result, where, _ = export_to_s3(
            str(out),
            filename,
            lambda local: run_export(db_path, preset.options, local, record_history=False),
            s3_filesystem(),  # the AWS environment / profile: a scheduled run has no window
            overwrite=not parse_s3_url(str(out)).is_prefix,
        )
        try:
            record_export(db_path, preset.options, where, result.rows, result.bytes,
                          datetime.now(UTC))  # fmt: skip
        except sqlite3.Error as exc:  # uploaded; only the history row is missing
            say(f"export preset {name!r}: not recorded in the history: {exc}")
        say(f"export preset {name!r}: {result.rows:,} rows to {where}")
        return True
    if out is None:
        target, unique = export_dir / filename, True
    else:
        path = Path(out).expanduser()
        is_folder = path.is_dir() or str(out).endswith(("/", "\\"))
        target, unique = (path / filename, True) if is_folder else (path, False)
    # a preset that names one file is replaced each run; a folder gets a new file each run
    result = run_export(db_path, preset.options, target, overwrite=not unique, unique=unique)
    say(f"export preset {name!r}: {result.rows:,} rows to {result.path}")
    return True
