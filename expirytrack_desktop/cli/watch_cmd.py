"""``expirytrack watch add|list|remove|run|schedule``: keep-complete watchlists.

A watchlist is a saved selection (explicit underlyings, or all indices / all stocks /
everything in F&O) kept in the database; ``watch run`` discovers each underlying's offered
expiries (new ones included), plans only what is missing and collects it deadline-first as
one collection job. Exit codes as ``collect``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.collect_cmd import _duration, _report, _token, print_plan, run_job
from expirytrack_desktop.cli.context import open_existing, runtime_from
from expirytrack_desktop.cli.failure import fail
from expirytrack_desktop.cli.long_run import (
    add_wait_options,
    waiting_options,
)
from expirytrack_desktop.cli.passphrase import cli_passphrase
from expirytrack_desktop.runtime import Runtime
from expirytrack_desktop.upstox.models import INTERVALS

SCHEDULE_PREFIX = "watch-"  # the schedule that runs watchlist NAME is called watch-NAME


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    w = subparsers.add_parser(
        "watch",
        help="keep-complete watchlists: saved selections collected until nothing is missing",
        description="A watchlist names underlyings (or all indices / all stocks / everything) "
        "and what to keep of them; `watch run` collects whatever is missing, new expiries "
        "and new underlyings included, oldest expiry first.",
    )
    sub = w.add_subparsers(dest="watch_command", metavar="ACTION", required=True)

    a = sub.add_parser("add", parents=[common], help="save a watchlist")
    a.add_argument("name", help="1-34 letters, digits, '-' or '_'")
    who = a.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--instrument",
        "-i",
        action="append",
        metavar="SYM",
        help="underlying symbol (RELIANCE, NIFTY, M&M) or instrument key; repeatable",
    )
    who.add_argument("--all-indices", action="store_true", help="every index in F&O")
    who.add_argument("--all-stocks", action="store_true", help="every stock in F&O")
    who.add_argument("--everything", action="store_true", help="every index and stock in F&O")
    a.add_argument("--types", default="CE,PE,FUT", metavar="LIST", help="default CE,PE,FUT")
    a.add_argument(
        "--strikes",
        default="all",
        metavar="all|N|X%",
        help="options: all strikes (default), N strikes each side of the price near expiry, "
        "or strikes within X%% of it (the expiry's future's last close; README)",
    )
    a.add_argument("--interval", default=None, choices=INTERVALS, help="candle interval")
    a.add_argument("--months", type=int, default=None, help="history before each expiry")
    a.add_argument("--replace", action="store_true", help="overwrite a watchlist of this name")
    a.set_defaults(func=cmd_add)

    ls = sub.add_parser("list", parents=[common], help="watchlists and how complete they are")
    ls.set_defaults(func=cmd_list)

    rm = sub.add_parser("remove", parents=[common], help="delete a watchlist (data stays)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    r = sub.add_parser("run", parents=[common], help="collect what a watchlist is missing")
    r.add_argument("name")
    r.add_argument("--concurrency", type=int, default=None, metavar="N", help="parallel requests")
    r.add_argument("--estimate-only", action="store_true", help="print the plan, fetch nothing")
    add_wait_options(r, network=None, login=None)  # a days-long backfill waits for ever
    r.set_defaults(func=cmd_run)

    sc = sub.add_parser(
        "schedule",
        parents=[common],
        help="run a watchlist daily through the OS scheduler (schedule watch-NAME)",
    )
    sc.add_argument("name")
    sc.add_argument("--at", action="append", required=True, metavar="HH:MM", help="local time")
    sc.add_argument("--days", default="daily", help="daily (default), mon-fri, mon,wed,fri, ...")
    sc.add_argument("--no-install", action="store_true", help="store it only; do not install")
    sc.set_defaults(func=cmd_schedule)


# ---- add / list / remove ---------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    from expirytrack_desktop.cli.underlyings_cmd import resolve_instruments
    from expirytrack_desktop.collect.selection import Selection, SelectionError
    from expirytrack_desktop.collect.selection import parse_contract_types as types_of
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.store.watchlists import (
        Watchlist,
        WatchlistError,
        check_watch_name,
        save_watchlist,
    )

    try:
        check_watch_name(args.name)
    except WatchlistError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    rt = runtime_from(args)
    keys: list[str] = []
    kind = "indices" if args.all_indices else "stocks" if args.all_stocks else "everything"
    if args.instrument:
        kind = "list"
        found, code = resolve_instruments(rt, args.instrument)
        if found is None:
            return code
        keys = found
    interval = args.interval or rt.settings.default_interval
    months = rt.settings.history_months if args.months is None else args.months
    try:
        from expirytrack_desktop.collect.watchlist import parse_strikes

        types = types_of(args.types)
        strikes = parse_strikes(args.strikes)
        Selection(keys or ["NIFTY"], None, interval, months, types)  # the same checks as collect
    except (SelectionError, ValueError) as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    wl = Watchlist(args.name, kind, tuple(keys), types, strikes, interval, months)
    try:
        db = rt.open_db()
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    try:
        replaced = save_watchlist(db, wl, replace_existing=args.replace)
    except WatchlistError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    from expirytrack_desktop.collect.watchlist import what_text

    rows = _universe_rows(rt)
    print(f"Watchlist {wl.name} {'replaced' if replaced else 'saved'}: {what_text(wl, rows)}")
    print(f"Run it with `expirytrack watch run {wl.name}` (or schedule it daily).")
    return exitcodes.OK


def _universe_rows(rt: Runtime) -> list[Any]:
    """The cached universe (no download), for symbols in messages."""
    from expirytrack_desktop.store import StoreError

    try:
        with rt.open_db(create=False, check_writable=False) as db:
            return list(db.universe())
    except StoreError:
        return []


def next_runs(rt: Runtime) -> dict[str, datetime]:
    """Next scheduled run per watchlist name (schedules whose run is a watchlist)."""
    from expirytrack_desktop.schedule import ScheduleError
    from expirytrack_desktop.schedule.manage import ScheduleManager, watchlist_next_runs

    try:
        return watchlist_next_runs(ScheduleManager(rt.paths).entries())
    except (ScheduleError, OSError, ValueError):
        return {}


def result_text(result: dict[str, Any] | None) -> str:
    if not result:
        return "never run"
    return str(result.get("summary") or result.get("state") or "?")


def cmd_list(args: argparse.Namespace) -> int:
    from expirytrack_desktop.collect.universe import ist_today
    from expirytrack_desktop.collect.watchlist import summaries
    from expirytrack_desktop.store import StoreError

    rt = runtime_from(args)
    db, code = open_existing(
        rt,
        "No watchlists yet: `expirytrack watch add NAME -i SYMBOL ...` saves one.",
        missing_code=exitcodes.OK,
    )
    if db is None:
        return code
    nexts = next_runs(rt)
    try:
        found = summaries(db, today=ist_today(), within_days=rt.settings.at_risk_days)
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    if not found:
        print("No watchlists yet: `expirytrack watch add NAME -i SYMBOL ...` saves one.")
    for w in found:
        c, nxt = w.completeness, nexts.get(w.watchlist.name)
        print(f"{w.watchlist.name}: {w.what}")
        print(
            f"  {w.underlyings} underlyings; expiries complete {c.complete}/{c.total}; "
            f"at risk {c.at_risk}; last run {w.watchlist.last_run_at or '-'}: "
            f"{result_text(w.watchlist.last_result)}; next run "
            f"{nxt.strftime('%Y-%m-%d %H:%M') if nxt else '-'}"
        )
    return exitcodes.OK


def cmd_remove(args: argparse.Namespace) -> int:
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.store.watchlists import WatchlistError, delete_watchlist

    db, code = open_existing(
        runtime_from(args),
        f"no watchlist named {args.name!r} (no database yet)",
        check_writable=True,
    )
    if db is None:
        return code
    try:
        delete_watchlist(db, args.name)
    except WatchlistError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()
    print(f"Watchlist {args.name} removed; the data it collected stays in the database.")
    return exitcodes.OK


def cmd_schedule(args: argparse.Namespace) -> int:
    from datetime import UTC

    from expirytrack_desktop.schedule import Schedule, ScheduleError, parse_days
    from expirytrack_desktop.schedule.manage import ScheduleManager
    from expirytrack_desktop.store import StoreError, StoreMissingError
    from expirytrack_desktop.store.watchlists import get_watchlist

    rt = runtime_from(args)
    try:
        with rt.open_db(create=False, check_writable=False) as db:
            wl = get_watchlist(db, args.name)
    except StoreMissingError:
        wl = None
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    if wl is None:
        return fail(
            exitcodes.BAD_INPUT, f"no watchlist named {args.name!r} (`expirytrack watch list`)"
        )
    try:
        s = Schedule(
            name=SCHEDULE_PREFIX + wl.name,
            instruments=[],
            times=list(args.at),
            days=list(parse_days(args.days)),
            db=args.db,
            demo=args.demo,
            api_base=args.api_base,
            rate_limit=args.rate_limit,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            watchlist=wl.name,
        ).validate()
    except ScheduleError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    try:
        done = ScheduleManager(rt.paths).add(s, install_it=not args.no_install)
    except ScheduleError as exc:
        return fail(exitcodes.ERROR, str(exc))
    where = f"installed into {done.backend}" if done.backend else "stored, not installed"
    print(f"Schedule {s.name} runs watchlist {wl.name} {s.when_text()} (local time); {where}.")
    print("  it runs: " + " ".join(done.argv))
    print(
        "  note: the Upstox token expires at 03:30 IST daily: log in before the run "
        "(a run without a valid token exits 3)."
    )
    return exitcodes.OK


# ---- run ------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.store.watchlists import get_watchlist

    rt = runtime_from(args)
    if args.concurrency is not None and not 1 <= args.concurrency <= 64:
        return fail(exitcodes.BAD_INPUT, "--concurrency must be between 1 and 64")
    try:
        rt.check_rate_limit()
    except ValueError as exc:
        return fail(exitcodes.BAD_INPUT, f"invalid rate limit: {exc}")
    db, code = open_existing(
        rt,
        f"no watchlist named {args.name!r} (no database yet)",
        check_writable=True,
        check_pages=True,
    )
    if db is None:
        return code
    try:
        wl = get_watchlist(db, args.name)
        if wl is None:
            return fail(
                exitcodes.BAD_INPUT,
                f"no watchlist named {args.name!r} (`expirytrack watch list`)",
            )
        token = None
        if not args.estimate_only:
            token, problem = _token(rt, args)
            if problem:
                return fail(exitcodes.NEEDS_LOGIN, problem)
        return asyncio.run(run_watchlist(rt, db, wl, token, args))
    except StoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    finally:
        db.close()


async def run_watchlist(rt: Runtime, db: Any, wl: Any, token: str | None, args: Any) -> int:
    """One run of ``wl``: universe, expiries, plan, one job; prints as ``collect`` does."""
    from expirytrack_desktop.collect.universe import refresh_universe
    from expirytrack_desktop.collect.watchlist import offered_expiries, selection_for, watch_keys
    from expirytrack_desktop.store.watchlists import record_run

    status = await refresh_universe(db, rt.instruments_url, transport=rt.transport())
    if status.note:
        print(f"note: {status.note}", file=sys.stderr)
    keys, notes = watch_keys(wl, await db.run(db.universe))
    for note in notes:
        print(f"note: {note}")
    if not keys:
        return fail(exitcodes.BAD_INPUT, f"watchlist {wl.name} names no underlying to collect")
    client = rt.make_client(token)
    try:
        collector = rt.make_collector(
            db,
            client,
            concurrency=args.concurrency,
            **waiting_options(rt, args, cli_passphrase),
        )
        selection = selection_for(wl, keys)
        offered = None
        if not args.estimate_only:
            offered, kept, left_out = await offered_expiries(client, selection)
            for note in left_out:
                print(f"note: {note}")
            notes += left_out
            if not kept:
                await db.run(record_run, db, wl.name, _result_dict(None, notes, "bad input"))
                return fail(
                    exitcodes.BAD_INPUT,
                    f"watchlist {wl.name}: the API offers no expiries for any of its underlyings",
                )
            selection = selection_for(wl, kept)
            for key, dates in offered.items():  # the estimate then counts the real expiries
                await db.run(db.upsert_expiries, key, dates)  # (the job stores them anyway)
        est = await collector.estimate(selection)
        approx = "about " if est.is_estimate else ""
        print_plan(
            f"Plan for {wl.name}: {len(selection.underlyings)} underlyings, {est.expiries} "
            f"expiries, {approx}{est.windows} candle windows missing; {approx}{est.requests} "
            f"requests, {approx}{_duration(est.seconds)} at {rt.rate_limit}",
            est,
            args,
        )
        if args.estimate_only:
            return exitcodes.OK
        result = await run_job(collector, selection, offered, rt)
        if result is None:
            await asyncio.shield(
                db.run(record_run, db, wl.name, _result_dict(None, notes, "cancelled"))
            )
            print("Cancelled; progress so far is kept. Run it again to continue.", file=sys.stderr)
            return exitcodes.CANCELLED
        code = _report(result, rt)
        await db.run(record_run, db, wl.name, _result_dict(result, notes, None, code))
        await _say_completeness(rt, db, wl, list(selection.underlyings))
        return code
    finally:
        await client.aclose()


async def _say_completeness(rt: Runtime, db: Any, wl: Any, keys: list[str]) -> None:
    """One line after a run: how complete the watchlist is now and what is still at risk."""
    from expirytrack_desktop.collect.universe import ist_today
    from expirytrack_desktop.collect.watchlist import completeness

    days = rt.settings.at_risk_days
    c = await db.run(completeness, db, wl, keys, today=ist_today(), within_days=days)
    risk = (
        f"; {c.at_risk} incomplete expiries vanish from Upstox within {days} days "
        "(`expirytrack status --at-risk`)"
        if c.at_risk
        else ""
    )
    print(f"Watchlist {wl.name}: {c.complete}/{c.total} expiries complete{risk}")


def _result_dict(
    result: Any, notes: list[str], state: str | None, code: int | None = None
) -> dict[str, Any]:
    if result is None:
        return {"state": state, "summary": state, "notes": notes}
    c = result.counters
    stored = c.windows_fetched + c.windows_empty
    return {
        "state": result.state.value,
        "exit_code": code,
        "job_id": result.job_id,
        "requests": c.requests,
        "windows": stored,
        "candles": c.candles,
        "failed": c.windows_failed,
        "notes": [*notes, *result.notes],
        "summary": f"{result.state.value}, {stored} windows, {c.candles} candles, "
        f"{c.windows_failed} failed (job {result.job_id})",
    }
