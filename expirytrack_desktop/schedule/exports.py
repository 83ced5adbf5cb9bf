"""Exports after a scheduled collection: "after each run, export what is new".

A schedule may name an export preset (``--export-preset``: that export, under a fresh
default name unless the preset names a file; with ``--export-new`` only the expiries whose
candles changed since its last export, :mod:`export.since`) and/or a Parquet mirror folder
(``--export-mirror``: the schedule's instruments, only new or changed partitions rewritten).
They run after the collection, whatever it stored, unless it could not run at all; a failed
export is reported (log, stderr, the run's report) but does not undo the collection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.api import ExportError, InvalidOptionsError, run_export
from expirytrack_desktop.export.cleanup import clean_after_export
from expirytrack_desktop.export.history import record_export
from expirytrack_desktop.export.mirror import update_mirror
from expirytrack_desktop.export.options import ExportOptions, default_filename
from expirytrack_desktop.export.presets import Preset, get_preset, presets_path
from expirytrack_desktop.export.s3 import (
    export_to_s3,
    is_s3_url,
    names_a_folder,
    parse_s3_url,
    s3_filesystem,
)
from expirytrack_desktop.export.since import changed_since
from expirytrack_desktop.fsutil import atomic_write_json
from expirytrack_desktop.schedule.model import Schedule


def run_exports(
    schedule: Schedule,
    db_path: Path,
    config_dir: Path,
    export_dir: Path,
    say: Callable[[str], None],
    now: Callable[[], datetime] = datetime.now,
    state_dir: Path | None = None,
    keep: tuple[float, float] = (0.0, 0.0),
    s3: Callable[[], Any] = s3_filesystem,
) -> bool:
    """Run the schedule's exports; True when every one succeeded (or there were none).
    ``state_dir`` keeps, for ``export_new``, what the preset's last export held
    (``NAME.exported.json``); ``keep``: the settings' automatic clean-up (days, MB) run after
    the preset's export; ``s3``: the S3 file system of a preset writing to ``s3://`` (with
    the stored credentials and the settings' endpoint; by default the AWS chain)."""
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
            seen = None
            if schedule.export_new:
                seen = seen_path(state_dir or config_dir, schedule.name)
            written = _preset_export(schedule.export_preset, db_path, config_dir, export_dir,
                                     say, now, seen, s3)  # fmt: skip
        except ExportError as exc:
            say(f"export preset {schedule.export_preset!r} failed: {exc}")
            return False
        clean_after_export(db_path, *keep, written, say)
    return ok


def check_exports(schedule: Schedule, config_dir: Path) -> None:
    """What the schedule's exports need, checked when it is saved rather than at its first
    run tonight: the preset exists, the mirror folder is not a file (an ExportError)."""
    if schedule.export_preset:
        preset = get_preset(presets_path(config_dir), schedule.export_preset)
        if schedule.export_new:
            _new_into_folder(preset)
    if schedule.export_mirror:
        folder = Path(schedule.export_mirror).expanduser()
        if folder.exists() and not folder.is_dir():
            raise InvalidOptionsError(f"the mirror folder {folder} exists and is not a folder")


def _new_into_folder(preset: Preset) -> None:
    """Only what is new goes into a folder (or prefix): one file would be replaced by each
    run's new part. Checked when the schedule is saved and again when it runs (the preset
    may have been saved anew since)."""
    out = str(preset.out or "")
    if out and not names_a_folder(out):  # a file (the export folder when there is none)
        raise InvalidOptionsError(
            f"preset {preset.name!r} writes one file ({out}), which each run would replace"
            " with only that run's new expiries: give it a folder for --export-new"
        )


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
    seen: Path | None = None,
    s3: Callable[[], Any] = s3_filesystem,
) -> Path | None:
    """Run the preset; the file or folder it wrote here (None: uploaded, or nothing new)."""
    preset = get_preset(presets_path(config_dir), name)
    options, prints = preset.options, None
    # what the fingerprints kept belong to: another preset, output or selection starts afresh
    tag = json.dumps([name, preset.out, options.to_json_dict()], sort_keys=True)
    if seen is not None:  # only the expiries that changed since the last export
        _new_into_folder(preset)
        narrowed, prints = changed_since(db_path, options, _load_seen(seen, tag))
        if narrowed is None:
            say(f"export preset {name!r}: nothing new since its last export")
            return None
        options = narrowed
    filename = default_filename(options, now())
    out: Any = preset.out
    if is_s3_url(out):  # a fresh object under the prefix (or that key) each run
        result, where, _ = export_to_s3(
            str(out),
            filename,
            lambda local: run_export(db_path, options, local, record_history=False),
            s3(),
            overwrite=not parse_s3_url(str(out)).is_prefix,
        )
        try:
            record_export(db_path, options, where, result.rows, result.bytes,
                          datetime.now(UTC))  # fmt: skip
        except sqlite3.Error as exc:  # uploaded; only the history row is missing
            say(f"export preset {name!r}: not recorded in the history: {exc}")
        _keep_seen(seen, tag, prints)
        say(f"export preset {name!r}: {result.rows:,} rows to {where}{_what(options, seen)}")
        return None
    if out is None:
        target, unique = export_dir / filename, True
    else:
        path = Path(out).expanduser()
        is_folder = names_a_folder(str(out))
        target, unique = (path / filename, True) if is_folder else (path, False)
    # a preset that names one file is replaced each run; a folder gets a new file each run
    result = run_export(db_path, options, target, overwrite=not unique, unique=unique)
    _keep_seen(seen, tag, prints)
    say(f"export preset {name!r}: {result.rows:,} rows to {result.path}{_what(options, seen)}")
    return Path(result.path)


def _what(options: ExportOptions, seen: Path | None) -> str:
    if seen is None or options.expiries is None:
        return ""
    return f" (new: expiries {', '.join(d.isoformat() for d in options.expiries)})"


def _load_seen(path: Path, tag: str) -> dict[str, Any]:
    """What the last export of this preset as it is now held ({} before the first, after the
    preset changed, or when the file is unreadable: everything is exported again, never
    less)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("preset") != tag:
        return {}
    return dict(doc.get("partitions", {}))


def _keep_seen(path: Path | None, tag: str, prints: dict[str, Any] | None) -> None:
    if path is not None and prints is not None:
        atomic_write_json(path, {"version": 1, "preset": tag, "partitions": prints})


def seen_path(state_dir: Path, name: str) -> Path:
    """Where a schedule keeps what its "only what is new" export last held."""
    return state_dir / f"{name}.exported.json"
