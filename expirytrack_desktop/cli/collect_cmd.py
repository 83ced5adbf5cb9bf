"""``expirytrack collect | status | jobs | retry``: the collection engine, headless.

Every problem the user can fix is one line on stderr and a documented exit code
(:mod:`expirytrack_desktop.cli.exitcodes`); collected data is never lost by a failed run:
rerunning the same command continues where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from datetime import date, datetime
from typing import Any, TextIO

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.context import open_existing, runtime_from
from expirytrack_desktop.cli.failure import error, fail
from expirytrack_desktop.cli.long_run import (
    COLLECT_LOGIN_WAIT,
    COLLECT_NETWORK_WAIT,
    add_wait_options,
    token_expiry_note,
    waiting_options,
)
from expirytrack_desktop.cli.passphrase import cli_passphrase
from expirytrack_desktop.collect.events import JobResult, Phase, Progress, StopReason
from expirytrack_desktop.collect.instruments import KNOWN_UNDERLYINGS
from expirytrack_desktop.runtime import TOKEN_ENV, Runtime
from expirytrack_desktop.upstox.models import INTERVALS


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    symbols = ", ".join(KNOWN_UNDERLYINGS)
    p = subparsers.add_parser(
        "collect",
        parents=[common],
        help="collect expired contracts and their candles into the database",
        description="Discover expiries, fetch option and future contracts, then candles. "
        "Resumable: rerun the same command after any interruption; nothing is fetched twice.",
    )
    p.add_argument(
        "--instrument",
        "-i",
        action="append",
        required=True,
        metavar="KEY",
        help=f"underlying key ('NSE_INDEX|Nifty 50'), index symbol ({symbols}) or a stock "
        "symbol from the instrument master (RELIANCE, M&M, any case); repeatable",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--expiry", "-e", action="append", metavar="YYYY-MM-DD", help="expiry date; repeatable"
    )
    which.add_argument(
        "--all-expiries", action="store_true", help="every expiry the API offers now"
    )
    p.add_argument("--interval", default=None, choices=INTERVALS, help="candle interval")
    p.add_argument("--months", type=int, default=None, help="history before each expiry")
    p.add_argument(
        "--types",
        default="CE,PE,FUT",
        metavar="LIST",
        help="contract types to fetch candles for (default CE,PE,FUT)",
    )
    p.add_argument("--concurrency", type=int, default=None, metavar="N", help="parallel requests")
    p.add_argument("--estimate-only", action="store_true", help="print the estimate, fetch nothing")
    add_wait_options(p, network=COLLECT_NETWORK_WAIT, login=COLLECT_LOGIN_WAIT)
    p.set_defaults(func=cmd_collect)

    s = subparsers.add_parser(
        "status", parents=[common], help="coverage per underlying and expiry, job history"
    )
    s.add_argument("--all", action="store_true", help="also list expiries never collected")
    s.add_argument(
        "--at-risk",
        action="store_true",
        help="only chosen expiries that are not complete and vanish from Upstox soon",
    )
    s.add_argument(
        "--within", type=int, metavar="DAYS", help="with --at-risk: days ahead (default 14)"
    )
    s.set_defaults(func=cmd_status)

    j = subparsers.add_parser("jobs", parents=[common], help="list collection jobs")
    j.add_argument("--limit", type=int, default=20)
    j.set_defaults(func=cmd_jobs)

    r = subparsers.add_parser(
        "retry", parents=[common], help="fetch again the failed windows of a job"
    )
    r.add_argument("job_id", type=int)
    r.add_argument("--concurrency", type=int, default=None, metavar="N")
    add_wait_options(r, network=COLLECT_NETWORK_WAIT, login=COLLECT_LOGIN_WAIT)
    r.set_defaults(func=cmd_retry)


def _token(rt: Runtime, args: Any = None) -> tuple[str | None, str | None]:
    """(token, error message). With ``args``, the secret store it was read from is kept on
    them, so a run waiting for a new login reads that same store (one passphrase prompt)."""
    try:
        if args is not None and not rt.demo and not os.environ.get(TOKEN_ENV, "").strip():
            from expirytrack_desktop.auth.token import load_access_token

            args.secret_store = rt.secret_store(cli_passphrase)
            token = load_access_token(args.secret_store)
        else:
            token = rt.access_token(passphrase=cli_passphrase)
    except Exception as exc:  # SecretStoreError and keyring trouble: one line, no secrets
        return None, f"cannot read the stored token: {exc}"
    if not token:
        return None, (
            "no valid access token: run `expirytrack login` (or set EXPIRYTRACK_ACCESS_TOKEN)"
        )
    return token, None


def _parse_expiries(values: list[str]) -> list[date]:
    out = []
    for v in values:
        try:
            out.append(date.fromisoformat(v.strip()))
        except ValueError:
            raise ValueError(f"bad expiry date {v!r}: expected YYYY-MM-DD") from None
    return out


def cmd_collect(args: argparse.Namespace) -> int:
    from expirytrack_desktop.cli.underlyings_cmd import resolve_instruments
    from expirytrack_desktop.collect.selection import (
        Selection,
        SelectionError,
        parse_contract_types,
    )
    from expirytrack_desktop.store import StoreError

    rt = runtime_from(args)
    keys, code = resolve_instruments(rt, args.instrument)
    if keys is None:
        return code
    try:
        expiries = None if args.all_expiries else _parse_expiries(args.expiry)
        selection = Selection(
            keys,
            expiries,
            args.interval or rt.settings.default_interval,
            rt.settings.history_months if args.months is None else args.months,
            parse_contract_types(args.types),
        )
    except (SelectionError, ValueError) as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    if args.concurrency is not None and not 1 <= args.concurrency <= 64:
        return fail(exitcodes.BAD_INPUT, "--concurrency must be between 1 and 64")
    try:
        rt.check_rate_limit()
    except ValueError as exc:
        return fail(exitcodes.BAD_INPUT, f"invalid rate limit: {exc}")
    token = None
    if not args.estimate_only:
        token, problem = _token(rt, args)
        if problem:
            return fail(exitcodes.NEEDS_LOGIN, problem)
    try:
        db = rt.open_db(check_pages=True)
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    try:
        return asyncio.run(_collect(rt, db, token, selection, args))
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()


async def _collect(rt: Runtime, db: Any, token: str | None, selection: Any, args: Any) -> int:
    client = rt.make_client(token)
    try:
        collector = rt.make_collector(
            db,
            client,
            concurrency=args.concurrency,
            **waiting_options(rt, args, cli_passphrase),
        )
        offered = None
        if not args.estimate_only:
            from expirytrack_desktop.collect.selection import SelectionError

            try:  # discovery first: bad input creates no job
                offered = await collector.check_selection(selection)
            except SelectionError as exc:
                return fail(exitcodes.BAD_INPUT, str(exc))
        est = await collector.estimate(selection)
        approx = "about " if est.is_estimate else ""
        print_plan(
            f"Plan: {est.expiries} expiries, {approx}{est.contracts} contracts, "
            f"{approx}{est.windows} candle windows to fetch; {approx}{est.requests} requests, "
            f"{approx}{_duration(est.seconds)} at {rt.rate_limit}",
            est,
            args,
        )
        if args.estimate_only:
            return exitcodes.OK
        result = await run_job(collector, selection, offered, rt)
        if result is None:
            print(
                "Cancelled; progress so far is kept. Run the same command to continue.",
                file=sys.stderr,
            )
            return exitcodes.CANCELLED
        return _report(result, rt)
    finally:
        await client.aclose()


async def run_job(collector: Any, selection: Any, offered: Any, rt: Runtime) -> JobResult | None:
    """Start the job with the progress bar on stderr and wait for it; ``None`` when Ctrl+C
    cancelled it (it was asked to stop and given 30 s to record where it got to)."""
    printer = _Printer(sys.stderr)
    job = await collector.start(selection, on_progress=printer, offered=offered)
    print(f"Job {job.id} ({rt.db_path})", file=sys.stderr)
    try:
        return await job.wait()
    except asyncio.CancelledError:  # Ctrl+C: asyncio.run cancels us
        job.cancel()
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(30):
                await job.wait()
        return None
    finally:
        printer.close()


def _report(result: JobResult, rt: Runtime) -> int:
    c = result.counters
    print(
        f"Job {result.job_id}: {result.state.value}; {c.windows_fetched + c.windows_empty} "
        f"windows stored ({c.windows_empty} without trades), {c.candles} candles, "
        f"{c.windows_failed} failed, {c.windows_refetched} re-fetched, {c.requests} requests"
    )
    for note in result.notes:
        print(f"  note: {note}")
    code = exitcodes.FOR_STOP_REASON[result.reason]
    if result.reason == StopReason.FAILED_ITEMS:
        for e in result.errors[:10]:
            print(f"  failed: {e}", file=sys.stderr)
    if result.message and result.reason != StopReason.OK:
        if result.reason == StopReason.NEEDS_LOGIN and not rt.demo:
            msg = result.message.replace("log in again", "run `expirytrack login`")
        else:
            msg = result.message
        error(msg)
    return code


def print_plan(headline: str, est: Any, args: argparse.Namespace) -> None:
    """The plan before a run starts: its headline, the estimate's notes, when the stored
    token expires during it, and each expiry it would reach after that expiry vanishes."""
    print(headline)
    for note in est.notes:
        print(f"  note: {note}")
    expiring = token_expiry_note(args, est.seconds)
    if expiring:
        print(f"  note: {expiring}")
    for warning in est.warnings:
        print(f"  WARNING: {warning}")


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


BUDGET_WAIT_SAY_S = 10.0  # shorter budget waits are the normal pace at 50 per second
_WAIT_OVER = {
    "network": "the API answers again: continuing",
    "login": "new login found: continuing",
}


class _Printer:
    """tqdm bar on a terminal; otherwise a plain line at most every 5 s and on state changes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.bar: Any = None
        self._last = 0.0
        self._state: tuple[str, str] | None = None
        self._waiting: str | None = None
        self._budget: float | None = None  # the budget wait last announced (its end)
        self._counts: tuple[int, int, int] | None = None  # what the last line said

    def __call__(self, p: Progress) -> None:
        if p.waiting_for != self._waiting:  # one line when a wait starts and when it ends
            before, self._waiting = self._waiting, p.waiting_for
            self._say(p.waiting if p.waiting_for else _WAIT_OVER.get(before or "", "continuing"))
        self._budget_wait(p)
        if self.tty:
            self._bar(p)
            return
        key = (p.state.value, p.phase.value)
        counts = (p.items_done, p.items_failed, p.requests)
        now = time.monotonic()
        if key == self._state and now - self._last < (5 if counts != self._counts else 300):
            return  # a line at most every 5 s; while nothing moves (a wait), every 5 minutes
        self._state, self._last, self._counts = key, now, counts
        eta = f", ETA {_duration(p.eta_seconds)}" if p.eta_seconds is not None else ""
        print(
            f"[{p.state.value}/{p.phase.value}] {p.items_done}/{p.items_total} items, "
            f"{p.items_failed} failed, {p.requests} requests ({p.rate:.1f}/s), "
            f"{p.candles} candles{eta}",
            file=self.stream,
        )

    def _budget_wait(self, p: Progress) -> None:
        """One line when the rate limits hold the run back for more than a few seconds (a
        spent 30-minute budget is a silent wait of up to half an hour otherwise)."""
        until = p.budget_until
        if until is None or until - time.time() < BUDGET_WAIT_SAY_S:
            if until is None:
                self._budget = None
            return
        if self._budget is not None and abs(until - self._budget) < 60:
            return
        self._budget = until
        eta = f"; ETA {_duration(p.eta_seconds)}" if p.eta_seconds else ""
        self._say(
            f"waiting for API budget until {datetime.fromtimestamp(until):%H:%M:%S} (the "
            f"Upstox rate limits allow no more requests before then){eta}"
        )

    def _bar(self, p: Progress) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=p.items_total, unit="item", file=self.stream, dynamic_ncols=True)
        if self.bar.total != p.items_total:
            self.bar.total = p.items_total
        self.bar.n = p.items_done + p.items_failed
        desc = p.phase.value if p.phase != Phase.CANDLES else "candles"
        if p.waiting_for:
            desc = "needs login" if p.waiting_for == "login" else "waiting for the network"
        elif p.budget_until is not None:
            desc = "waiting for API budget"
        elif p.state.value != "running":
            desc = p.state.value
        self.bar.set_description(desc)
        self.bar.set_postfix(req=p.requests, rps=f"{p.rate:.1f}", fail=p.items_failed)

    def _say(self, line: str | None) -> None:
        if not line:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_status(args: argparse.Namespace) -> int:
    from expirytrack_desktop.store import StoreError

    rt = runtime_from(args)
    db, code = open_existing(
        rt,
        f"No database yet at {rt.db_path}: run `expirytrack collect` first.",
        missing_code=exitcodes.OK,
    )
    if db is None:
        return code
    try:
        if args.at_risk:
            from expirytrack_desktop.cli.atrisk_report import print_at_risk

            return print_at_risk(rt, db, args.within)
        n = db.counts()
        print(f"Database {rt.db_path}")
        print(
            f"  {n.underlyings} underlyings, {n.expiries} expiries, {n.contracts} contracts, "
            f"{n.candles} candles, {n.db_bytes / 1e6:.1f} MB"
        )
        rows = db.coverage()
        shown = [r for r in rows if args.all or r.target is not None or r.contracts]
        if shown:
            print()
            print(
                f"{'underlying':<12} {'expiry':<10} {'kind':<7} {'interval':<9} {'state':<9} "
                f"{'contracts':>9} {'complete':>8} {'failed':>6} {'candles':>10}"
            )
            for r in shown:
                kind = "-" if r.is_weekly is None else ("weekly" if r.is_weekly else "monthly")
                print(
                    f"{(r.symbol or r.instrument_key)[:12]:<12} {r.expiry_date.isoformat():<10} "
                    f"{kind:<7} {r.interval:<9} {r.state:<9} {r.contracts:>9} "
                    f"{r.contracts_complete:>8} {r.failed_windows:>6} {r.candles:>10}"
                )
        hidden = len(rows) - len(shown)
        if hidden:
            print(f"  ({hidden} more expiries known but not collected; --all lists them)")
        _print_jobs(db.list_jobs(limit=10))
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    return exitcodes.OK


def _print_jobs(jobs: list[Any]) -> None:
    if not jobs:
        return
    print()
    print(f"{'job':>4} {'status':<12} {'started':<19} {'items':>11} {'failed':>6} {'what'}")
    for j in jobs:
        what = f"{j.underlyings or ''} {j.expiries or ''}".strip()
        print(
            f"{j.id:>4} {j.status:<12} {(j.started_at or j.created_at):<19} "
            f"{j.done_items:>5}/{j.total_items:<5} {j.failed_items:>6} {what[:60]}"
        )
        if j.error_message and j.status != "completed":
            print(f"{'':>4} {j.error_message[:160]}")


def cmd_jobs(args: argparse.Namespace) -> int:
    db, code = open_existing(runtime_from(args), "No jobs yet.", missing_code=exitcodes.OK)
    if db is None:
        return code
    try:
        _print_jobs(db.list_jobs(limit=args.limit))
    finally:
        db.close()
    return exitcodes.OK


def cmd_retry(args: argparse.Namespace) -> int:
    from expirytrack_desktop.store import StoreError

    rt = runtime_from(args)
    try:
        rt.check_rate_limit()
    except ValueError as exc:
        return fail(exitcodes.BAD_INPUT, f"invalid rate limit: {exc}")
    try:
        db = rt.open_db(create=False, check_pages=True)
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    try:
        rec = db.get_job(args.job_id)  # a wrong number is said before any login is asked
        if rec is None or rec.job_type != "collect":
            return fail(exitcodes.BAD_INPUT, f"no collection job {args.job_id}")
        token, problem = _token(rt, args)
        if problem:
            return fail(exitcodes.NEEDS_LOGIN, problem)
        return asyncio.run(_retry(rt, db, token, args))
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()


async def _retry(rt: Runtime, db: Any, token: str | None, args: Any) -> int:
    client = rt.make_client(token)
    try:
        collector = rt.make_collector(
            db,
            client,
            concurrency=args.concurrency,
            **waiting_options(rt, args, cli_passphrase),
        )
        printer = _Printer(sys.stderr)
        job = await collector.retry_failed(args.job_id, on_progress=printer)
        result = await job.wait()
        printer.close()
        return _report(result, rt)
    finally:
        await client.aclose()
