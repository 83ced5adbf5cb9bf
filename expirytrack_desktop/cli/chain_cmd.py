"""``expirytrack chain``: the option chain of one expiry at a past minute, from the database.

The window's option-chain page shows the same :func:`analysis.chain.build_chain` snapshot.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from typing import Any, TextIO

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "chain",
        parents=[common],
        help="the option chain of an expiry at a past minute (LTP, OI, volume, IV, greeks)",
        description="Rebuild an expiry's option chain as it stood at a past minute from the "
        "stored 1-minute candles: LTP = close of each contract's last candle at or before the "
        "minute; volume = that day's volume up to it; OI and its change since the day's first "
        "candle; IV and greeks by Black-76 on the forward (the same-expiry future, else put-call "
        "parity). A minute outside the session or on a holiday shows the nearest earlier trading "
        "minute, said on stderr.",
    )
    p.add_argument(
        "--instrument",
        "-i",
        required=True,
        metavar="KEY|SYMBOL",
        help="underlying: a key, an index symbol or a symbol from the instrument master",
    )
    p.add_argument("--expiry", "-e", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--at", required=True, metavar='"YYYY-MM-DD HH:MM"', help="IST wall time")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="annual risk-free rate, continuously compounded (default: the setting "
        "risk_free_rate, 0.065)",
    )
    p.set_defaults(func=cmd_chain)


def parse_at(text: str) -> datetime:
    """``"2025-04-17 10:30"`` -> an IST datetime; ValueError with a clear message otherwise."""
    from expirytrack_desktop.timeutil import IST

    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise ValueError(f'--at {text!r}: expected "YYYY-MM-DD HH:MM" (IST)') from None
    return naive.replace(tzinfo=IST)


def cmd_chain(args: argparse.Namespace) -> int:
    from expirytrack_desktop.analysis.candles import DbCandleSource
    from expirytrack_desktop.analysis.chain import ChainError, build_chain
    from expirytrack_desktop.analysis.chain_table import snapshot_rows, write_csv
    from expirytrack_desktop.cli.context import open_existing, runtime_from
    from expirytrack_desktop.cli.underlyings_cmd import resolve_instruments
    from expirytrack_desktop.store import StoreError

    rt = runtime_from(args)
    try:
        expiry = date.fromisoformat(args.expiry)
        at = parse_at(args.at)
        rate = args.rate if args.rate is not None else rt.settings.risk_free_rate
        if not -1.0 < rate < 1.0:
            raise ValueError(f"--rate {rate}: give a decimal such as 0.065 (6.5 %)")
    except ValueError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    keys, code = resolve_instruments(rt, [args.instrument])  # symbols as -i takes them
    if keys is None:
        return code
    key = keys[0]
    db, code = open_existing(rt, f"no database at {rt.db_path}")
    if db is None:
        return code
    try:
        snap = build_chain(DbCandleSource(db), key, expiry, at, rate=rate)
    except ChainError as exc:
        hint = f"expirytrack collect -i {args.instrument!r} -e {expiry}"
        return fail(exitcodes.BAD_INPUT, f"{exc}; collect it first: {hint}")
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    if snap.empty:
        hint = f"expirytrack collect -i {args.instrument!r} -e {expiry}"
        return fail(
            exitcodes.BAD_INPUT, f"{key} {expiry}: {snap.when.note}; collect it first: {hint}"
        )
    print(header(snap), file=sys.stderr)
    rows = snapshot_rows(snap)
    if args.format == "csv":
        write_csv(rows, sys.stdout)
    else:
        write_table(rows, sys.stdout)
    return exitcodes.OK


def header(snap: Any) -> str:
    when = snap.when.minute.strftime("%Y-%m-%d %H:%M IST")
    parts = [f"{snap.underlying_key} expiry {snap.expiry} at {when}"]
    if snap.when.note:
        parts.append(f"({snap.when.note})")
    fwd = f"{snap.forward:.2f} ({snap.forward_source})" if snap.forward is not None else "unknown"
    parts.append(f"forward {fwd}, t {snap.t_years:.6f} y, rate {snap.rate}")
    if snap.atm_strike is not None:
        parts.append(f"ATM {fmt_num(snap.atm_strike)}")
    if snap.pcr is not None:
        parts.append(f"PCR {snap.pcr:.3f}")
    if snap.max_pain is not None:
        parts.append(f"max pain {fmt_num(snap.max_pain)}")
    return " · ".join(parts)


def fmt_num(x: float) -> str:
    return f"{x:g}" if x != int(x) else str(int(x))


TABLE = (
    ("ce_oi", 10, "{:,}"),
    ("ce_volume", 9, "{:,}"),
    ("ce_iv", 7, "{:.2%}"),
    ("ce_delta", 6, "{:.2f}"),
    ("ce_ltp", 9, "{:.2f}"),
    ("strike", 9, None),
    ("pe_ltp", 9, "{:.2f}"),
    ("pe_delta", 6, "{:.2f}"),
    ("pe_iv", 7, "{:.2%}"),
    ("pe_volume", 9, "{:,}"),
    ("pe_oi", 10, "{:,}"),
)


def write_table(rows: list[dict[str, object]], out: TextIO) -> None:
    out.write(" ".join(f"{c.upper().replace('_', ' '):>{w}}" for c, w, _ in TABLE) + "\n")
    for r in rows:
        cells = []
        for c, w, f in TABLE:
            v = r[c]
            text = "" if v is None else (fmt_num(v) if f is None else f.format(v))  # type: ignore[arg-type]
            cells.append(f"{text:>{w}}")
        out.write(" ".join(cells) + "\n")
