"""``expirytrack underlyings``: the F&O universe from Upstox's instrument master, and the
``-i SYMBOL`` resolution every command that takes instruments shares.

The master is fetched at most once a day (``--refresh`` forces it); without it the cached copy
is used and its date said on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.context import runtime_from
from expirytrack_desktop.cli.failure import fail
from expirytrack_desktop.runtime import Runtime


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "underlyings",
        parents=[common],
        help="list the F&O underlyings (indices and stocks) from Upstox's instrument master",
        description="One line per underlying: symbol, name, instrument key, lot size. The "
        "instrument master is downloaded at most once a day (no login needed) and cached in "
        "the database; underlyings that left F&O stay listed, marked with their last day.",
    )
    p.add_argument("--search", metavar="TEXT", help="part of a symbol or company name")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--indices", action="store_true", help="indices only")
    kind.add_argument("--stocks", action="store_true", help="stocks only")
    p.add_argument("--refresh", action="store_true", help="download the master even if today's")
    p.set_defaults(func=cmd_underlyings)


def _refresh(rt: Runtime, db: Any, *, force: bool = False) -> Any:
    from expirytrack_desktop.collect.universe import refresh_universe

    status = asyncio.run(
        refresh_universe(db, rt.instruments_url, transport=rt.transport(), force=force)
    )
    if status.note:
        print(f"note: {status.note}", file=sys.stderr)
    return status


def resolve_instruments(
    rt: Runtime, texts: Sequence[str], *, keep_typed: bool = False
) -> tuple[list[str] | None, int]:
    """Instrument keys for what was typed after ``-i`` (the master only when a text needs it):
    ``(keys, OK)``, or ``(None, exit code)`` after printing the one-line reason.
    ``keep_typed``: keys and index symbols stay as typed; only master symbols become keys."""
    from expirytrack_desktop.collect.universe import ResolveError, needs_universe, resolve_one
    from expirytrack_desktop.store import StoreError

    rows: list[Any] = []
    if any(needs_universe(t) for t in texts):
        try:
            db = rt.open_db()
        except StoreError as exc:
            return None, fail(exitcodes.STORAGE, str(exc))
        try:
            _refresh(rt, db)
            rows = db.universe()
        except StoreError as exc:
            return None, fail(exitcodes.STORAGE, str(exc))
        finally:
            db.close()
    out: list[str] = []
    try:
        for text in texts:
            value = text if keep_typed and not needs_universe(text) else resolve_one(text, rows)
            if value not in out:
                out.append(value)
    except ResolveError as exc:
        return None, fail(exitcodes.BAD_INPUT, str(exc))
    except ValueError as exc:  # a malformed key
        return None, fail(exitcodes.BAD_INPUT, str(exc))
    return out, exitcodes.OK


def cmd_underlyings(args: argparse.Namespace) -> int:
    from expirytrack_desktop.store import StoreError

    rt = runtime_from(args)
    try:
        db = rt.open_db()
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    try:
        status = _refresh(rt, db, force=args.refresh)
        if status.info is None:
            return exitcodes.NETWORK
        kind = "INDEX" if args.indices else "EQUITY" if args.stocks else None
        rows = db.universe(search=args.search, kind=kind)
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    info = status.info
    print(
        f"Instrument master of {info.master_date.isoformat()}: {info.in_fo} underlyings in F&O"
        + (f", {info.former} that left F&O" if info.former else "")
        + f"; {len(rows)} shown.",
        file=sys.stderr,
    )
    w_sym = max((len(r.symbol) for r in rows), default=6)
    w_name = min(40, max((len(r.name) for r in rows), default=4))
    w_key = max((len(r.instrument_key) for r in rows), default=3)
    for r in rows:
        gone = "" if r.in_fo else f"  (left F&O; last listed {r.last_seen.isoformat()})"
        print(
            f"{r.symbol:<{w_sym}}  {r.name[:w_name]:<{w_name}}  {r.instrument_key:<{w_key}}  "
            f"{r.lot_size:>6}{gone}"
        )
    return exitcodes.OK
