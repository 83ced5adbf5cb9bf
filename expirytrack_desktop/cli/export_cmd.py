"""``expirytrack export``: the export engine, headless (same options as the wizard).

Problems the user can fix are one line on stderr with a documented exit code; a failed or
interrupted export leaves no file behind.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail
from expirytrack_desktop.export.errors import InvalidOptionsError
from expirytrack_desktop.export.options import (
    ALL_CSV_COLUMNS,
    ExportOptions,
    options_for_name,
    parse_csv_columns,
)
from expirytrack_desktop.export.presets import (
    Preset,
    delete_preset,
    get_preset,
    load_presets,
    presets_path,
    save_preset,
)
from expirytrack_desktop.export.s3 import is_s3_url, names_a_folder
from expirytrack_desktop.upstox.models import INTERVALS

EPILOG = (
    "--out is a file (or, for --per-contract / --partitioned, a new folder), or an existing "
    "folder (or a path ending in '/') in which the default name "
    "OpenAlgo_ExpiryTrack_[Instrument|All]_[YYYYMMDD]_[HHMMSS].[ext] is used. Without --out "
    "the export goes to the export folder of the settings. A file name's extension gives the "
    "format and CSV compression not chosen (-o x.parquet writes Parquet, -o x.csv.gz gzip) "
    "and one that contradicts them is refused. Exit codes: 0 done, 2 bad input "
    "(unknown instrument, empty selection, no data, output exists), 5 storage (database "
    "unreadable, folder unwritable, disk full), 130 cancelled."
)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _types(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(t.strip().upper() for t in text.split(",") if t.strip()))
    bad = [k for k in kinds if k not in ("CE", "PE", "FUT")]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"contract types are CE, PE, FUT; not {text!r}")
    return kinds


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "export",
        parents=[common],
        help="export stored candles with OpenAlgo symbols (CSV, JSON, ZIP, Parquet)",
        description="Export candles of expired contracts from the database for backtests.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--format",
        "-f",
        choices=("csv", "json", "zip", "parquet", "historify"),
        help="csv (default, or what --out's extension names), json, zip, parquet; historify:"
        " OpenAlgo Historify (--out X.duckdb"
        " loads its database directly, --out FOLDER writes one Parquet file per symbol)",
    )
    p.add_argument(
        "--instrument",
        "-i",
        action="append",
        metavar="KEY",
        help="underlying key ('NSE_INDEX|Nifty 50') or symbol (NIFTY); repeatable",
    )
    p.add_argument(
        "--expiry", "-e", action="append", type=_date, metavar="YYYY-MM-DD", help="repeatable"
    )
    p.add_argument("--type", type=_types, metavar="LIST", help="CE,PE,FUT (default: all)")
    p.add_argument("--strike-min", type=float, metavar="X", help="lowest option strike")
    p.add_argument("--strike-max", type=float, metavar="Y", help="highest option strike")
    p.add_argument("--from", dest="date_from", type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--last-days", type=int, metavar="N", help="the last N days (IST), today too")
    p.add_argument("--interval", choices=INTERVALS, help="default 1minute")
    # store_true with default None: "not given" differs from False (a preset's value stays)
    p.add_argument(
        "--metadata", action="store_true", default=None, help="add contract columns (strike, ...)"
    )
    p.add_argument(
        "--per-contract",
        action="store_true",
        default=None,
        help="one file per contract, in a folder",
    )
    p.add_argument(
        "--partitioned",
        action="store_true",
        default=None,
        help="a Parquet dataset folder partitioned by underlying and expiry (Parquet only)",
    )
    p.add_argument(
        "--compression",
        choices=("none", "gzip", "zstd", "snappy", "lz4", "brotli"),
        help="csv: none (default), gzip (.csv.gz) or zstd (.csv.zst); parquet: zstd (default),"
        " snappy, gzip, lz4, brotli or none",
    )
    p.add_argument(
        "--compression-level", type=int, metavar="N", help="gzip 1-9, zstd 1-22, brotli 0-11"
    )
    p.add_argument(
        "--columns",
        metavar="LIST",
        help="csv/zip: the columns to write, in this order, comma-separated, each once; from "
        + ", ".join(ALL_CSV_COLUMNS)
        + " (default: the first eleven; --metadata adds the rest)",
    )
    p.add_argument(
        "--preset", metavar="NAME", help="start from a saved preset; other flags override it"
    )
    p.add_argument(
        "--save-preset", metavar="NAME", help="save this export's options (and --out) as NAME"
    )
    p.add_argument("--list-presets", action="store_true", help="list saved presets and exit")
    p.add_argument("--delete-preset", metavar="NAME", help="delete a saved preset and exit")
    p.add_argument(
        "--clean-older-than",
        type=float,
        metavar="DAYS",
        help="remove exports older than DAYS (only files this app wrote, unchanged) and exit",
    )
    p.add_argument(
        "--clean-max-size",
        metavar="SIZE",
        help="remove the oldest exports until they total at most SIZE (500M, 2G) and exit",
    )
    p.add_argument("--dry-run", action="store_true", help="with --clean-*: only list them")
    p.add_argument(
        "--mirror",
        metavar="DIR",
        help="keep a Parquet dataset DIR/underlying=X/expiry=D/ in step with the database:"
        " only new or changed partitions are rewritten",
    )
    p.add_argument("--out", "-o", metavar="PATH", help="output file or folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_export)


def _options(args: argparse.Namespace, db: Any, base: ExportOptions | None) -> ExportOptions:
    """The export's options: a preset's (or the defaults), then every flag given on top."""
    from expirytrack_desktop.export.api import resolve_underlyings

    if base is None and not args.instrument:
        raise InvalidOptionsError("give --instrument/-i (or --preset NAME)")
    changes: dict[str, Any] = {}
    if args.instrument:
        changes["underlyings"] = resolve_underlyings(db, args.instrument)
    if args.expiry:
        changes["expiries"] = tuple(args.expiry)
    if args.last_days is not None or args.date_from or args.date_to:
        changes.update(last_days=args.last_days, date_from=args.date_from, date_to=args.date_to)
    flags = {
        "contract_types": args.type, "strike_min": args.strike_min,
        "strike_max": args.strike_max, "interval": args.interval,
        "include_metadata": args.metadata, "per_contract": args.per_contract,
        "format": args.format, "parquet_partitioned": args.partitioned,
        "compression": args.compression, "compression_level": args.compression_level,
    }  # fmt: skip
    changes.update({k: v for k, v in flags.items() if v is not None})
    if args.partitioned and args.format is None:  # a partitioned dataset is Parquet's
        changes["format"] = "parquet"
    elif args.format not in (None, "parquet") and not args.partitioned:
        changes["parquet_partitioned"] = False  # a preset's dataset: not for this format
    if args.columns is not None:
        changes["csv_columns"] = parse_csv_columns(args.columns)
    elif changes.get("format") not in (None, "csv", "zip"):  # a preset's CSV columns: not here
        changes["csv_columns"] = None
    if base is None:
        return ExportOptions(**changes)
    return replace(base, **changes)


def _manage_presets(args: argparse.Namespace, store: Path) -> int:
    if args.delete_preset:
        if not delete_preset(store, args.delete_preset):
            raise InvalidOptionsError(f"no export preset named {args.delete_preset!r}")
        print(f"deleted export preset {args.delete_preset!r}")
        return exitcodes.OK
    for name, p in load_presets(store).items():
        o = p.options
        what = f"{o.format} of {', '.join(o.underlyings)}"
        print(f"{name}: {what}" + (f" -> {p.out}" if p.out else ""))
    return exitcodes.OK


def _mirror(args: argparse.Namespace, db: Any, options: ExportOptions, err: TextIO) -> int:
    from expirytrack_desktop.export.mirror import update_mirror

    reporter = _Reporter(err, args.quiet)
    try:
        r = update_mirror(db, options, Path(args.mirror).expanduser(), progress=reporter)
    finally:
        reporter.close()
    print(
        f"mirror {args.mirror}: {len(r.written)} partitions written ({r.rows:,} rows),"
        f" {r.unchanged} unchanged, {len(r.removed)} removed"
    )
    return exitcodes.OK


def _to_s3(
    args: argparse.Namespace,
    runtime: Any,
    db: Any,
    options: ExportOptions,
    url: str,
    name: str,
    err: TextIO,
) -> int:
    """Export into a private temporary folder, upload it to ``url``, record it."""
    from expirytrack_desktop.cli.passphrase import cli_passphrase
    from expirytrack_desktop.export.api import run_export
    from expirytrack_desktop.export.history import record_export
    from expirytrack_desktop.export.s3 import configured_s3, export_to_s3

    filesystem = configured_s3(
        lambda: runtime.secret_store(cli_passphrase),
        runtime.settings,
        lambda line: print(f"warning: {line}", file=err),
    )
    reporter = _Reporter(err, args.quiet)
    try:
        result, where, count = export_to_s3(
            url,
            name,
            lambda local: run_export(db, options, local, progress=reporter, record_history=False),
            filesystem,
            overwrite=args.overwrite,
        )
    finally:
        reporter.close()
    try:
        record_export(db, options, where, result.rows, result.bytes, datetime.now(UTC))
    except sqlite3.Error as exc:  # uploaded; only the history row is missing
        print(f"warning: export not recorded in history: {exc}", file=err)
    files = f"{count} files, " if count > 1 else ""
    print(f"exported {result.rows:,} rows ({files}{_size(result.bytes)}) to {where}")
    _clean_after(runtime, db, None, err)
    return exitcodes.OK


def _clean(args: argparse.Namespace, db: Any) -> int:
    from expirytrack_desktop.export.cleanup import clean_exports, parse_size

    limit = None if args.clean_max_size is None else parse_size(args.clean_max_size)
    result = clean_exports(
        db, older_than_days=args.clean_older_than, max_total_bytes=limit, dry_run=args.dry_run
    )
    verb = "would remove" if args.dry_run else "removed"
    for r in result.removed:
        print(f"{verb} {r.path} ({_size(r.bytes)}, exported {r.created_at:%Y-%m-%d %H:%M} UTC)")
    for path in result.kept_changed:
        print(f"kept {path}: changed since it was exported", file=sys.stderr)
    n = len(result.removed)
    print(f"{verb} {n} export{'' if n == 1 else 's'}, {_size(result.freed)}")
    return exitcodes.OK


def _target(out: str | None, runtime: Any, default_name: str) -> tuple[Path, bool]:
    """``--out`` as a file, or an existing folder (or ``.../``) to put the default name in;
    and whether the default name is used (then a taken name becomes ``name_2``)."""
    if out is None:
        folder = runtime.settings.export_dir or runtime.paths.export_dir
        return Path(folder).expanduser() / default_name, True
    path = Path(out).expanduser()
    if names_a_folder(out):
        return path / default_name, True
    return path, False


class _Reporter:
    """tqdm bar on a terminal, a plain line per ~10% otherwise."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.bar: Any = None
        self.next_tenth = 1

    def __call__(self, p: Any) -> None:
        if self.quiet or not p.rows_total:
            return
        if self.stream.isatty():
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=p.rows_total, unit="rows", unit_scale=True, file=self.stream)
            self.bar.update(p.rows_done - self.bar.n)
            return
        if p.phase == "counting":
            print(f"exporting {p.rows_total:,} rows of {p.contracts_total} contracts",
                  file=self.stream)  # fmt: skip
        elif p.phase == "writing" and p.rows_done * 10 >= self.next_tenth * p.rows_total:
            self.next_tenth = p.rows_done * 10 // p.rows_total + 1
            print(f"{p.rows_done * 100 // p.rows_total}% {p.rows_done:,} rows", file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def cmd_export(args: argparse.Namespace) -> int:
    from expirytrack_desktop.export import api
    from expirytrack_desktop.runtime import Runtime

    runtime = Runtime.create(db=args.db, demo=getattr(args, "demo", False))
    db = runtime.db_path
    err = sys.stderr
    try:
        store = presets_path(runtime.paths.config_dir)
        if args.list_presets or args.delete_preset:
            return _manage_presets(args, store)
        if args.clean_older_than is not None or args.clean_max_size is not None:
            return _clean(args, db)
        preset = get_preset(store, args.preset) if args.preset else None
        options = _options(args, db, preset.options if preset else None)
        out = args.out if args.out is not None else (preset.out if preset else None)
        keys = options.underlyings
        if args.mirror:
            return _mirror(args, db, options, err)
        if out is not None and not names_a_folder(str(out)):
            options = options_for_name(
                options,
                str(out),
                format_chosen=args.format is not None
                or bool(args.partitioned)
                or preset is not None,
                compression_chosen=args.compression is not None
                or (preset is not None and preset.options.compression is not None),
            )
        if args.save_preset is not None:  # "" is refused by its name check, not skipped
            save_preset(store, Preset(args.save_preset, options, out))
            print(f"saved export preset {args.save_preset!r} in {store}", file=err)
        options.validate()
        symbol = None
        if len(keys) == 1:
            symbol = next(
                (u.symbol for u in api.available_underlyings(db) if u.instrument_key == keys[0]),
                None,
            )
        name = api.default_filename(options, datetime.now(), symbol=symbol)
        if is_s3_url(out):
            return _to_s3(args, runtime, db, options, str(out), name, err)
        target, default = _target(out, runtime, name)
        reporter = _Reporter(err, args.quiet)
        try:
            result = api.run_export(
                db, options, target, overwrite=args.overwrite, progress=reporter, unique=default
            )
        finally:
            reporter.close()
    except KeyboardInterrupt:
        print("export cancelled; no file was written", file=err)
        return exitcodes.CANCELLED
    except api.ExportCancelled as exc:
        return fail(exitcodes.CANCELLED, str(exc), err=err)
    except api.DatabaseMissingError:  # as chain, verify, watch: nothing to read is bad input
        return fail(exitcodes.BAD_INPUT, f"no database at {db}", err=err)
    except (api.DatabaseError, api.UnwritableOutputError, api.DiskFullError) as exc:
        return fail(exitcodes.STORAGE, str(exc), err=err)
    except api.OutputExistsError as exc:  # the flag, once; never for what it would refuse
        why = f"{exc.what} (choose another name, or --overwrite to replace it)"
        return fail(exitcodes.BAD_INPUT, why if exc.replaceable else str(exc), err=err)
    except api.ExportError as exc:  # bad selection, no data
        return fail(exitcodes.BAD_INPUT, str(exc), err=err)
    files = f"{result.files} files, " if result.files > 1 else ""
    print(f"exported {result.rows:,} rows ({files}{_size(result.bytes)}) to {result.path}")
    _clean_after(runtime, db, Path(result.path), err)
    return exitcodes.OK


def _clean_after(runtime: Any, db: Any, written: Path | None, err: TextIO) -> None:
    """The settings' automatic clean-up of old exports (never the one just written)."""
    from expirytrack_desktop.export.cleanup import clean_after_export

    s = runtime.settings
    clean_after_export(db, s.export_keep_days, s.export_keep_mb, written,
                       lambda line: print(line, file=err))  # fmt: skip
