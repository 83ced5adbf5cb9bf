"""``expirytrack verify``: data integrity checks, as a table; ``--fix`` re-marks bad windows.

Exit code 0 when nothing is wrong or missing (notes do not count), 4 (FAILED_ITEMS) when a
problem was found, 5 when the database cannot be opened at all.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "verify",
        parents=[common],
        help="check the database: SQLite integrity, candles, windows, coverage",
        description="Check the stored data and report what is wrong or missing. Deletes "
        "nothing; --fix only re-marks windows whose candles do not match their done mark as "
        "not fetched, so the next `collect` of the same selection fetches them again.",
    )
    p.add_argument("--instrument", "-i", metavar="KEY", help="only this underlying")
    p.add_argument(
        "--expiry", "-e", action="append", metavar="YYYY-MM-DD", help="only these expiries"
    )
    p.add_argument(
        "--types",
        metavar="LIST",
        help="coverage of these contract types only, as collected with `collect --types` "
        "(default: all)",
    )
    p.add_argument("--fix", action="store_true", help="re-mark inconsistent windows as not fetched")
    p.add_argument("--quick", action="store_true", help="PRAGMA quick_check (faster on big files)")
    p.add_argument(
        "--full",
        action="store_true",
        help="check every candle and window again (default: those written or changed since "
        "the last verify that found no error)",
    )
    p.add_argument("--examples", type=int, default=5, metavar="N", help="examples per finding")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from expirytrack_desktop.cli.context import open_existing, runtime_from
    from expirytrack_desktop.cli.underlyings_cmd import resolve_instruments
    from expirytrack_desktop.collect.selection import parse_contract_types
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.store.verify import fix, verify

    rt = runtime_from(args)
    try:
        expiries = [date.fromisoformat(e) for e in args.expiry or []]
        types = parse_contract_types(args.types) if args.types is not None else None
    except ValueError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    db, code = open_existing(rt, f"no database at {rt.db_path}", check_writable=args.fix)
    if db is None:
        return code
    key = None
    if args.instrument:  # a symbol from the master (RELIANCE, M&M) as well as a key
        keys, code = resolve_instruments(rt, [args.instrument])
        if keys is None:
            db.close()
            return code
        key = keys[0]
    try:
        print(
            f"Verifying {rt.db_path} ({'quick' if args.quick else 'full'} check)...",
            file=sys.stderr,
        )
        report = verify(
            db,
            instrument=key,
            expiries=expiries or None,
            types=types,
            quick=args.quick,
            examples=args.examples,
            full=args.full,
        )
        print(render(report))
        if args.fix:
            if report.fixable:
                done = fix(db, report)
                print(
                    f"\nFixed: {done.windows} window(s) of {done.contracts} contract(s) re-marked "
                    f"as not fetched ({done.expiries} expiry(ies) no longer marked complete); no "
                    "candle was deleted. Run the same `expirytrack collect` again to fetch them."
                )
            else:
                print("\n--fix: no inconsistent window to re-mark; nothing changed.")
        elif report.fixable:
            print(
                f"\n{len(report.fixable)} inconsistent window(s): `expirytrack verify --fix` "
                "re-marks them as not fetched so the next collect fetches them again."
            )
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    return exitcodes.OK if report.clean else exitcodes.FAILED_ITEMS


def render(report: Any) -> str:
    st = report.stats
    lines = [
        f"Database {report.db_path} — scope: {report.scope}",
        f"  {st.get('underlyings', 0)} underlyings, {st.get('expiries', 0)} expiries "
        f"({st.get('expiries_collected', 0)} collected), {st.get('contracts', 0):,} contracts, "
        f"{st.get('windows', 0):,} windows, {st.get('candles', 0):,} candles"
        + (
            f" checked ({st['windows_checked']:,} windows written or changed since the last "
            "clean verify)"
            if "windows_checked" in st
            else ""
        ),
        "",
        f"{'check':<48} {'kind':<10} {'found':>9}  result",
    ]
    for f in report.findings:
        if f.skipped:
            result = "NOT RUN"
        elif f.ok:
            result = "ok"
        else:
            result = {"error": "PROBLEM", "incomplete": "MISSING", "note": "note"}[f.severity]
        lines.append(f"{f.title[:48]:<48} {f.severity:<10} {f.count:>9,}  {result}")
    detail = [f for f in report.findings if not f.ok]
    for f in detail:
        lines.append("")
        lines.append(f"{f.title} ({f.count:,}):")
        if f.skipped:
            lines.append(f"  could not run: {f.skipped}")
        lines += [f"  {e}" for e in f.examples]
        if f.count > len(f.examples) and f.examples:
            lines.append(f"  ... ({f.count - len(f.examples):,} more)")
        if f.hint:
            lines.append(f"  {f.hint}")
    lines.append("")
    lines.append(
        "kind: error = stored data contradicts itself; incomplete = asked for but not stored "
        "(collect again); note = unusual but possibly genuine (special sessions such as Muhurat "
        "trading): reported, never changed."
    )
    problems = report.problems
    if not problems:
        lines.append("Result: no problems found.")
    else:
        lines.append(
            f"Result: {len(problems)} check(s) found problems "
            f"({sum(p.count for p in problems):,} items)."
        )
    return "\n".join(lines)
