"""``expirytrack schedule add | list | remove | run``: scheduled collections.

``add`` stores the schedule in ``<config>/schedules.json`` and installs it into the OS
scheduler (systemd user timer or crontab, launchd, Task Scheduler), which runs
``expirytrack schedule run NAME`` at the chosen times. ``run`` does exactly what the OS
does: plans again (failed windows included), retries on failed items and network trouble
with backoff, records the outcome and sends the e-mail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import error, fail
from expirytrack_desktop.collect.instruments import KNOWN_UNDERLYINGS
from expirytrack_desktop.upstox.models import INTERVALS


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "schedule",
        help="scheduled collections (installed into the OS scheduler)",
        description="Collections that run by themselves at set times, retry what failed and "
        "e-mail the outcome.",
    )
    sub = p.add_subparsers(dest="schedule_command", metavar="ACTION")

    a = sub.add_parser(
        "add",
        parents=[common],
        help="add (or replace) a schedule and install it",
        description="Store a scheduled collection and install it into the OS scheduler. "
        "Times are this computer's local time. --db/--demo/--api-base/--rate-limit given here "
        "are remembered for the scheduled runs.",
    )
    a.add_argument("--name", help="schedule name (default: from the instruments)")
    a.add_argument(
        "--instrument",
        "-i",
        action="append",
        required=True,
        metavar="KEY",
        help=f"underlying key, index symbol ({', '.join(KNOWN_UNDERLYINGS)}) or stock symbol "
        "(RELIANCE, M&M; stored as its key); repeatable",
    )
    which = a.add_mutually_exclusive_group(required=True)
    which.add_argument("--expiry", "-e", action="append", metavar="YYYY-MM-DD")
    which.add_argument(
        "--all-expiries", action="store_true", help="every expiry the API offers at run time"
    )
    a.add_argument(
        "--at", action="append", required=True, metavar="HH:MM", help="local time; repeatable"
    )
    a.add_argument(
        "--days", default="mon-fri", help="mon-fri (default), daily, sat, mon,wed,fri, ..."
    )
    a.add_argument("--interval", choices=INTERVALS, help="candle interval (default: settings)")
    a.add_argument("--months", type=int, help="history before each expiry (default: settings)")
    a.add_argument("--types", default="CE,PE,FUT", metavar="LIST")
    a.add_argument(
        "--notify-email",
        action="append",
        default=[],
        metavar="ADDR",
        help="e-mail the outcome here (default: notify_to of `notify configure`); repeatable",
    )
    a.add_argument("--notify-on", choices=("always", "failure", "never"), default="always")
    a.add_argument("--retries", type=int, default=3, help="retries after failures (default 3)")
    a.add_argument(
        "--retry-delay",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="wait before the first retry, doubled after each (default 120)",
    )
    a.add_argument(
        "--max-hours",
        type=float,
        default=12.0,
        metavar="HOURS",
        help="a run (with its retries) still going after this stops itself, and a later run "
        "stops one that hangs past it (default 12)",
    )
    a.add_argument(
        "--export-preset",
        metavar="NAME",
        help="after each run, run this export preset (see `export --save-preset`)",
    )
    a.add_argument(
        "--export-mirror",
        metavar="DIR",
        help="after each run, bring this Parquet mirror of the schedule's instruments up to date",
    )
    a.add_argument(
        "--export-new",
        action="store_true",
        help="with --export-preset: export only the expiries whose candles changed since the"
        " preset's last scheduled export (the first run: all it selects)",
    )
    a.add_argument(
        "--print", action="store_true", help="show what would be installed; change nothing"
    )
    a.add_argument(
        "--no-install", action="store_true", help="store it only (run it with your own tool)"
    )
    a.set_defaults(func=cmd_add)

    ls = sub.add_parser("list", parents=[common], help="list schedules and their last run")
    ls.set_defaults(func=cmd_list)

    rm = sub.add_parser("remove", parents=[common], help="uninstall and delete a schedule")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    r = sub.add_parser(
        "run", parents=[common], help="run a schedule now, as the OS scheduler would"
    )
    r.add_argument("name")
    r.add_argument("--no-notify", action="store_true", help="send no e-mail this time")
    r.set_defaults(func=cmd_run)

    p.set_defaults(func=lambda _a: (p.print_help(), exitcodes.BAD_INPUT)[1])


def _paths() -> Any:
    from expirytrack_desktop.paths import AppPaths

    return AppPaths.default()


def _default_name(instruments: list[str]) -> str:
    from expirytrack_desktop.collect.instruments import resolve_instrument, symbol_for_key

    parts = []
    for i in instruments:
        try:
            sym = symbol_for_key(resolve_instrument(i)) or i
        except ValueError:
            sym = i
        parts.append("".join(ch for ch in sym.lower() if ch.isalnum()))
    return ("-".join(p for p in parts if p) or "collect")[:40]


def _manager() -> Any:
    from expirytrack_desktop.schedule.manage import ScheduleManager

    return ScheduleManager(_paths())


def cmd_add(args: argparse.Namespace) -> int:
    from expirytrack_desktop.cli.context import runtime_from
    from expirytrack_desktop.cli.underlyings_cmd import resolve_instruments
    from expirytrack_desktop.collect.selection import SelectionError
    from expirytrack_desktop.export.errors import ExportError
    from expirytrack_desktop.schedule import Schedule, ScheduleError, parse_days

    keys, code = resolve_instruments(runtime_from(args), args.instrument, keep_typed=True)
    if keys is None:
        return code
    try:
        s = Schedule(
            name=args.name or _default_name(args.instrument),
            instruments=keys,
            times=list(args.at),
            days=list(parse_days(args.days)),
            expiries=None if args.all_expiries else list(args.expiry),
            interval=args.interval,
            months=args.months,
            types=[t.strip().upper() for t in args.types.split(",") if t.strip()],
            notify_email=list(args.notify_email),
            notify_on=args.notify_on,
            retries=args.retries,
            retry_delay=args.retry_delay,
            max_hours=args.max_hours,
            db=args.db,
            demo=args.demo,
            api_base=args.api_base,
            rate_limit=args.rate_limit,
            export_preset=args.export_preset,
            export_mirror=args.export_mirror,
            export_new=args.export_new,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ).validate()
        s.selection()  # instruments, interval, months, types must make a valid selection
        if s.export_preset or s.export_mirror:  # checked now, not only at 16:30 tonight
            from expirytrack_desktop.schedule.exports import check_exports

            check_exports(s, runtime_from(args).paths.config_dir)
    except (ScheduleError, SelectionError) as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    except ExportError as exc:  # no such preset, a mirror folder that is a file
        return fail(exitcodes.BAD_INPUT, str(exc))
    manager = _manager()
    try:
        if args.print:
            backend = manager.backend()
            print(f"Schedule {s.name}: {s.what_text()}; {s.when_text()}")
            print(backend.plan_install(s, manager.run_argv(s.name)).describe())
            return exitcodes.OK
        done = manager.add(s, install_it=not args.no_install)
    except ScheduleError as exc:
        return fail(exitcodes.ERROR, str(exc))
    if done.backend is None:
        print(f"Stored schedule {s.name} ({s.when_text()}); not installed. Run it with:")
        print("  " + " ".join(done.argv))
        return exitcodes.OK
    verb = "Replaced" if done.replaced else "Added"
    print(f"{verb} schedule {s.name}: {s.what_text()}; {s.when_text()} (local time)")
    if s.exports_text():
        print(f"  {s.exports_text()}")
    print(f"Installed into {done.backend}; it runs: {' '.join(done.argv)}")
    for note in done.notes:
        if done.backend != "cron" or note.startswith("output"):
            print(f"  note: {note}")
    print(
        "  note: the Upstox token expires at 03:30 IST daily: log in before the run "
        "(a run without a valid token exits 3 and e-mails that)."
    )
    return exitcodes.OK


def cmd_list(args: argparse.Namespace) -> int:
    from expirytrack_desktop.schedule import ScheduleError

    try:
        entries = _manager().entries()
    except ScheduleError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    if not entries:
        print("No schedules. Add one with `expirytrack schedule add`.")
        return exitcodes.OK
    print(f"{'name':<20} {'when':<28} {'installed':<9} {'next run':<17} {'last run':<26} what")
    for e in entries:
        s, st = e.schedule, e.last
        last = "never"
        if st:
            last = f"{(st.get('finished_at') or '')[:16]} exit {st.get('exit_code')}"
        nxt = e.next_run.strftime("%Y-%m-%d %H:%M") if e.next_run else "-"
        print(
            f"{s.name:<20} {s.when_text()[:28]:<28} {(s.backend or 'no'):<9} {nxt:<17} "
            f"{last:<26} {s.what_text()}"
        )
        if s.exports_text():
            print(f"{'':<20} {s.exports_text()}")
        recipients = ", ".join(s.notify_email) or "(notify_to setting)"
        if s.notify_on != "never":
            print(f"{'':<20} e-mail {s.notify_on}: {recipients}; retries {s.retries}")
    return exitcodes.OK


def cmd_remove(args: argparse.Namespace) -> int:
    from expirytrack_desktop.schedule import ScheduleError

    manager = _manager()
    try:
        s = manager.store.get(args.name)
    except ScheduleError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    if s is None:
        return fail(exitcodes.BAD_INPUT, f"no schedule named {args.name!r}")
    for p in manager.remove(s.name):
        print(f"warning: {p}", file=sys.stderr)
    print(f"Removed schedule {s.name}" + (f" (uninstalled from {s.backend})" if s.backend else ""))
    return exitcodes.OK


def cmd_run(args: argparse.Namespace) -> int:
    from expirytrack_desktop.runtime import Runtime
    from expirytrack_desktop.schedule import AlreadyRunning, RunLock, ScheduleError
    from expirytrack_desktop.schedule.runlock import STALE_MARGIN
    from expirytrack_desktop.schedule.runner import WATCHDOG_MARGIN, Watchdog, append_log

    try:
        s = _manager().store.get(args.name)
    except ScheduleError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    if s is None:
        return fail(exitcodes.BAD_INPUT, f"no schedule named {args.name!r}")
    if s.db and not args.db and not Path(s.db).expanduser().is_absolute():
        # stored before paths were made whole: it would open (or create) a database in
        # whatever folder the OS scheduler starts in
        return fail(
            exitcodes.BAD_INPUT,
            f"schedule {s.name} names its database by a relative path ({s.db}): add it again"
            " with the full --db path",
        )
    rt = Runtime.create(
        db=args.db or s.db,
        api_base=args.api_base or s.api_base,
        rate_limit=args.rate_limit or s.rate_limit,
        demo=args.demo or s.demo,
    )
    try:
        rt.check_rate_limit()
    except ValueError as exc:
        return fail(exitcodes.BAD_INPUT, f"invalid rate limit: {exc}")
    paths = rt.paths
    limit = s.max_hours * 3600.0
    lock_path = paths.data_dir / "schedules" / f"{s.name}.lock"
    lock = RunLock(lock_path, stale_after=limit + STALE_MARGIN)
    try:
        with lock:
            _say_lock_history(paths, s.name, lock)
            with Watchdog(limit + WATCHDOG_MARGIN, lambda: _give_up(paths, s.name, limit)):
                return _run_locked(args, rt, s)
    except AlreadyRunning as exc:
        print(f"Schedule {s.name}: {exc}; this run is skipped.", file=sys.stderr)
        append_log(paths.log_dir, f"{s.name}: skipped, {exc}")
        return exitcodes.OK
    except OSError as exc:
        return fail(exitcodes.STORAGE, f"cannot take the run lock {lock.path}: {exc.strerror}")


def _say_lock_history(paths: Any, name: str, lock: Any) -> None:
    from expirytrack_desktop.schedule.runner import append_log

    now = time.time()
    if lock.took_over is not None:
        text = f"stopped a stalled run ({lock.took_over.describe(now)}) past its time limit"
    elif lock.previous is not None:
        text = f"the previous run ({lock.previous.describe(now)}) ended without finishing"
    else:
        return
    print(f"{name}: {text}", file=sys.stderr)
    append_log(paths.log_dir, f"{name}: {text}")


def _give_up(paths: Any, name: str, limit: float) -> None:
    """The watchdog: the run's own limit did not stop it (its event loop is stuck); end the
    process so the OS releases the lock. Stored windows stay; the next run plans again."""
    from expirytrack_desktop.schedule.runner import append_log

    text = f"{name}: still running past its {limit / 3600:g} h limit; the process exits"
    print(text, file=sys.stderr, flush=True)
    append_log(paths.log_dir, text)
    os._exit(exitcodes.NETWORK)


def _run_locked(args: argparse.Namespace, rt: Any, s: Any) -> int:
    from expirytrack_desktop.cli.collect_cmd import _token
    from expirytrack_desktop.collect.events import StopReason
    from expirytrack_desktop.schedule import RunReport
    from expirytrack_desktop.schedule import hooks as _hooks
    from expirytrack_desktop.schedule.runner import (
        append_log,
        run_collection,
        save_state,
        stderr_is_tty,
    )

    paths = rt.paths
    append_log(paths.log_dir, f"{s.name}: started ({s.what_text()})")
    token, problem = _token(rt)
    if problem or not token:
        now = datetime.now(UTC)
        report = RunReport(s, now, now, reason=StopReason.NEEDS_LOGIN, db_path=str(rt.db_path))
        report.message = problem
    else:
        printer = None
        if stderr_is_tty():
            from expirytrack_desktop.cli.collect_cmd import _Printer

            printer = _Printer(sys.stderr)
        h = _hooks.current()

        def say(text: str) -> None:
            print(f"{s.name}: {text}", file=sys.stderr)
            append_log(paths.log_dir, f"{s.name}: {text}")

        kwargs: dict[str, Any] = {"on_progress": printer, "say": say}
        if h.sleep is not None:
            kwargs["sleep"] = h.sleep
        try:
            report = asyncio.run(run_collection(s, rt, token, **kwargs))
        finally:
            if printer is not None:
                printer.close()
    if (s.export_preset or s.export_mirror) and report.reason in (
        StopReason.OK,
        StopReason.FAILED_ITEMS,
    ):
        from expirytrack_desktop.schedule.exports import run_exports

        def said(text: str) -> None:
            print(f"{s.name}: {text}", file=sys.stderr)
            append_log(paths.log_dir, f"{s.name}: {text}")

        export_dir = Path(rt.settings.export_dir or paths.export_dir).expanduser()
        keep = (rt.settings.export_keep_days, rt.settings.export_keep_mb)
        run_exports(s, Path(rt.db_path), paths.config_dir, export_dir, said,
                    state_dir=paths.data_dir / "schedules", keep=keep,
                    s3=lambda: _s3(rt, said))  # fmt: skip
    save_state(paths.data_dir, report)
    line = report.summary_line()
    append_log(paths.log_dir, f"{line} (exit {report.exit_code})")
    print(line)
    if report.message and not report.ok:
        error(report.message)
    for e in report.failed_items[:10]:
        print(f"  failed: {e}", file=sys.stderr)
    if report.at_risk:
        soonest = report.at_risk[0]
        warn = (
            f"{s.name}: {len(report.at_risk)} expiries still incomplete vanish from Upstox within "
            f"{report.at_risk_days} days (first: {soonest.symbol or soonest.instrument_key} "
            f"{soonest.expiry.isoformat()}, last day {soonest.last_day.isoformat()}); "
            "see `expirytrack status --at-risk`"
        )
        print(f"warning: {warn}", file=sys.stderr)
        append_log(paths.log_dir, warn)
    if not args.no_notify:
        _notify(rt, s, report, token)
    return report.exit_code


def _notify(rt: Any, s: Any, report: Any, token: str | None) -> None:
    """E-mail the report when the schedule asks for it; a failure to send is a warning only."""
    from expirytrack_desktop.notify import NotifyError, SmtpConfig, compose_report
    from expirytrack_desktop.notify import send as send_mail
    from expirytrack_desktop.schedule import hooks as _hooks
    from expirytrack_desktop.schedule.runner import append_log

    if s.notify_on == "never" or (
        s.notify_on == "failure" and report.ok and not report.at_risk  # at risk: always told
    ):
        return
    cfg = SmtpConfig.from_settings(rt.settings)
    to = list(s.notify_email) or list(cfg.to)
    if not to:
        return
    try:
        password = _smtp_password(rt) if cfg.user else None
        msg = compose_report(report, cfg, to, secrets=[token, password])
        send_mail(msg, cfg, password, ssl_context=_hooks.current().ssl_context)
    except NotifyError as exc:
        print(f"warning: e-mail not sent: {exc}", file=sys.stderr)
        append_log(rt.paths.log_dir, f"{s.name}: e-mail not sent: {exc}")
        return
    print(f"E-mailed the outcome to {', '.join(to)}")
    append_log(rt.paths.log_dir, f"{s.name}: e-mailed {', '.join(to)}")


def _smtp_password(rt: Any) -> str | None:
    from expirytrack_desktop.cli.passphrase import cli_passphrase
    from expirytrack_desktop.notify import SMTP_PASSWORD, NotifyError

    try:
        return rt.secret_store(cli_passphrase).get(SMTP_PASSWORD)
    except Exception as exc:  # SecretStoreError, keyring trouble: its message has no secret
        raise NotifyError(f"cannot read the SMTP password: {exc}") from None


def _s3(rt: Any, say: Callable[[str], None]) -> Any:
    """The S3 file system of a scheduled export: the stored access key (as the window's and
    the CLI's exports use), else the AWS chain; the settings' endpoint and region."""
    from expirytrack_desktop.cli.passphrase import cli_passphrase
    from expirytrack_desktop.export.s3 import configured_s3

    return configured_s3(lambda: rt.secret_store(cli_passphrase), rt.settings, say)
