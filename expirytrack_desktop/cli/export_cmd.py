"""``expirytrack export``: the export engine, headless (same options as the wizard).

Problems the user can fix are one line on stderr with a documented exit code; a failed or
interrupted export leaves no file behind.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail
from expirytrack_desktop.upstox.models import INTERVALS

EPILOG = (
    "--out is a file (or, for --per-contract / --partitioned, a new folder), or an existing "
    "folder (or a path ending in '/') in which the default name "
    "OpenAlgo_ExpiryTrack_[Instrument|All]_[YYYYMMDD]_[HHMMSS].[ext] is used. Without --out "
    "the export goes to the export folder of the settings. Exit codes: 0 done, 2 bad input "
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
        default="csv",
        help="historify: OpenAlgo Historify (--out X.duckdb loads its database directly,"
        " --out FOLDER writes one Parquet file per symbol for its import)",
    )
    p.add_argument(
        "--instrument",
        "-i",
        action="append",
        required=True,
        metavar="KEY",
        help="underlying key ('NSE_INDEX|Nifty 50') or symbol (NIFTY); repeatable",
    )
    p.add_argument(
        "--expiry", "-e", action="append", type=_date, metavar="YYYY-MM-DD", help="repeatable"
    )
    p.add_argument(
        "--type", type=_types, default=("CE", "PE", "FUT"), metavar="LIST", help="CE,PE,FUT"
    )
    p.add_argument("--strike-min", type=float, metavar="X", help="lowest option strike")
    p.add_argument("--strike-max", type=float, metavar="Y", help="highest option strike")
    p.add_argument("--from", dest="date_from", type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--last-days", type=int, metavar="N", help="the last N days (IST), today too")
    p.add_argument("--interval", choices=INTERVALS, default="1minute")
    p.add_argument("--metadata", action="store_true", help="add contract columns (strike, ...)")
    p.add_argument("--per-contract", action="store_true", help="one file per contract, in a folder")
    p.add_argument(
        "--partitioned",
        action="store_true",
        help="parquet: a dataset folder partitioned by underlying and expiry",
    )
    p.add_argument("--out", "-o", metavar="PATH", help="output file or folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_export)


def _target(out: str | None, runtime: Any, default_name: str) -> tuple[Path, bool]:
    """``--out`` as a file, or an existing folder (or ``.../``) to put the default name in;
    and whether the default name is used (then a taken name becomes ``name_2``)."""
    if out is None:
        folder = runtime.settings.export_dir or runtime.paths.export_dir
        return Path(folder).expanduser() / default_name, True
    path = Path(out).expanduser()
    if path.is_dir() or out.endswith(("/", "\\")):
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
        keys = api.resolve_underlyings(db, args.instrument)
        options = api.ExportOptions(
            underlyings=keys,
            expiries=tuple(args.expiry) if args.expiry else None,
            contract_types=args.type,
            strike_min=args.strike_min,
            strike_max=args.strike_max,
            last_days=args.last_days,
            date_from=args.date_from,
            date_to=args.date_to,
            interval=args.interval,
            include_metadata=args.metadata,
            per_contract=args.per_contract,
            format=args.format,
            parquet_partitioned=args.partitioned,
        )
        options.validate()
        symbol = None
        if len(keys) == 1:
            symbol = next(
                (u.symbol for u in api.available_underlyings(db) if u.instrument_key == keys[0]),
                None,
            )
        name = api.default_filename(options, datetime.now(), symbol=symbol)
        target, default = _target(args.out, runtime, name)
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
    except (api.DatabaseError, api.UnwritableOutputError, api.DiskFullError) as exc:
        return fail(exitcodes.STORAGE, str(exc), err=err)
    except api.ExportError as exc:  # bad selection, no data, output exists
        hint = " (use --overwrite to replace it)" if isinstance(exc, api.OutputExistsError) else ""
        return fail(exitcodes.BAD_INPUT, f"{exc}{hint}", err=err)
    files = f"{result.files} files, " if result.files > 1 else ""
    print(f"exported {result.rows:,} rows ({files}{_size(result.bytes)}) to {result.path}")
    return exitcodes.OK
