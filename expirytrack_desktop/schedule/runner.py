"""Running a schedule now, exactly as the OS scheduler does: plan, collect, retry, notify.

Auto-retry needs no bookkeeping of its own: every attempt plans again from the database, and
the planner treats 'failed' windows as not covered (``collect.plan.plan_windows``), so the
windows that failed in an earlier attempt or an earlier scheduled run are fetched again, and
windows already stored are never fetched twice. An attempt that ends with failed items or an
unreachable network is retried ``schedule.retries`` times, waiting ``retry_delay`` seconds,
doubled after each attempt (capped at :data:`MAX_DELAY`). A rejected token, bad input or a
storage problem is not retried: waiting does not fix them.

Rate limits: the limiter's ledger is a file shared by every process of the user, so a
scheduled run beside the open window (or another run) stays inside the one Upstox budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expirytrack_desktop.collect import exit_codes as exitcodes
from expirytrack_desktop.collect.events import Counters, StopReason
from expirytrack_desktop.fsutil import atomic_write_json
from expirytrack_desktop.schedule.model import Schedule

MAX_DELAY = 1800.0
RETRYABLE = frozenset({StopReason.NETWORK, StopReason.FAILED_ITEMS})
OUTCOME_TEXT = {
    StopReason.OK: "completed",
    StopReason.FAILED_ITEMS: "finished with failed items",
    StopReason.NEEDS_LOGIN: "needs login",
    StopReason.PLAN_REQUIRED: "needs an Upstox Plus subscription",
    StopReason.BAD_INPUT: "bad input",
    StopReason.STORAGE: "storage problem",
    StopReason.NETWORK: "API unreachable",
    StopReason.CANCELLED: "cancelled",
}

CANCEL_GRACE = 60.0  # seconds a cancelled job gets to wind down at the run's time limit
WATCHDOG_MARGIN = 300.0  # seconds after the limit before a stuck run's process exits

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Attempt:
    number: int
    reason: StopReason
    job_id: int | None = None
    counters: Counters = field(default_factory=Counters)
    message: str | None = None
    errors: tuple[str, ...] = ()
    timed_out: bool = False  # stopped at the run's time limit

    @property
    def failed(self) -> int:
        """Items that failed: windows, or contract lists (counted by their error lines)."""
        n = self.counters.windows_failed
        if self.reason == StopReason.FAILED_ITEMS:
            n = max(n, len(self.errors))
        return n


@dataclass(slots=True)
class RunReport:
    """Outcome of one scheduled run (all its attempts): the e-mail and the CLI print it."""

    schedule: Schedule
    started_at: datetime
    finished_at: datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    reason: StopReason = StopReason.OK
    message: str | None = None
    db_path: str = ""
    host: str = field(default_factory=socket.gethostname)
    at_risk: list[Any] = field(default_factory=list)  # collect.atrisk.AtRiskExpiry, after the run
    at_risk_days: int = 14

    @property
    def exit_code(self) -> int:
        return exitcodes.FOR_STOP_REASON[self.reason]

    @property
    def ok(self) -> bool:
        return self.reason == StopReason.OK

    @property
    def outcome(self) -> str:
        return OUTCOME_TEXT[self.reason]

    def total(self, name: str) -> int:
        return sum(getattr(a.counters, name) for a in self.attempts)

    @property
    def failed_items(self) -> tuple[str, ...]:
        """Items still failed after the last attempt."""
        return self.attempts[-1].errors if self.attempts else ()

    def summary_line(self) -> str:
        failed = self.attempts[-1].failed if self.attempts else 0
        return (
            f"{self.schedule.name}: {self.outcome}; "
            f"{self.total('windows_fetched') + self.total('windows_empty')} windows stored, "
            f"{self.total('candles')} candles, {failed} failed, {len(self.attempts)} attempt(s)"
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds")
            if self.finished_at
            else None,
            "exit_code": self.exit_code,
            "outcome": self.outcome,
            "summary": self.summary_line(),
            "job_id": self.attempts[-1].job_id if self.attempts else None,
        }


def retry_delay(schedule: Schedule, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(min(MAX_DELAY, schedule.retry_delay * 2 ** (attempt - 1)))


async def run_collection(
    schedule: Schedule,
    rt: Any,
    token: str,
    *,
    sleep: Sleep = asyncio.sleep,
    on_progress: Callable[[Any], None] | None = None,
    say: Callable[[str], None] = lambda _t: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_run: float | None = None,
) -> RunReport:
    """All attempts of one scheduled run against ``rt`` (a :class:`~expirytrack_desktop.runtime.
    Runtime`). Never raises for expected trouble: the report says what happened.

    ``max_run`` (seconds, default: the schedule's ``max_hours``) bounds the whole run: an
    attempt still going then is cancelled (answers already stored stay; the next run plans
    again), no retry starts that could not finish in time, and the report says
    :data:`StopReason.NETWORK` with the reason. ``None`` or 0: the schedule's limit."""
    from expirytrack_desktop.collect.selection import SelectionError
    from expirytrack_desktop.store import StoreError

    report = RunReport(schedule, now(), db_path=str(rt.db_path))
    try:
        selection = (
            None
            if schedule.watchlist
            else schedule.selection(rt.settings.default_interval, rt.settings.history_months)
        )
    except SelectionError as exc:
        report.reason, report.message = StopReason.BAD_INPUT, str(exc)
        report.finished_at = now()
        return report
    try:
        db = rt.open_db(check_pages=True)
    except StoreError as exc:
        report.reason, report.message = StopReason.STORAGE, str(exc)
        report.finished_at = now()
        return report
    if schedule.watchlist:
        try:
            selection = await _watch_selection(schedule.watchlist, rt, db, say)
        except (SelectionError, StoreError) as exc:
            db.close()
            report.reason = (
                StopReason.STORAGE if isinstance(exc, StoreError) else StopReason.BAD_INPUT
            )
            report.message = str(exc)
            report.finished_at = now()
            return report
    clock = asyncio.get_running_loop().time
    limit = max_run or schedule.max_hours * 3600.0
    deadline = clock() + limit
    try:
        for number in range(1, schedule.retries + 2):
            attempt = await _attempt(
                rt, db, token, selection, number, on_progress, deadline - clock(), limit,
                watch=bool(schedule.watchlist), say=say if number == 1 else None,
            )  # fmt: skip
            report.attempts.append(attempt)
            report.reason, report.message = attempt.reason, attempt.message
            say(
                f"attempt {number}: {OUTCOME_TEXT[attempt.reason]} "
                f"(job {attempt.job_id}, {attempt.failed} failed)"
            )
            if attempt.timed_out or attempt.reason not in RETRYABLE or number > schedule.retries:
                break
            delay = retry_delay(schedule, number)
            if clock() + delay >= deadline:
                say(f"no retry: it would start after the run's limit of {_hours(limit)}")
                break
            say(f"retrying in {delay:g} s (attempt {number + 1} of {schedule.retries + 1})")
            await sleep(delay)
        report.at_risk_days = rt.settings.at_risk_days
        report.at_risk = await db.run(_left_at_risk, db, selection, report.at_risk_days)
        if schedule.watchlist:
            await _record_watch(db, schedule.watchlist, report)
    finally:
        db.close()
    report.finished_at = now()
    return report


async def _watch_selection(name: str, rt: Any, db: Any, say: Callable[[str], None]) -> Any:
    """The selection a scheduled run of watchlist ``name`` collects (SelectionError if the
    watchlist is gone or names nothing)."""
    from expirytrack_desktop.collect.selection import SelectionError
    from expirytrack_desktop.collect.watchlist import watch_selection
    from expirytrack_desktop.store.watchlists import get_watchlist

    wl = await db.run(get_watchlist, db, name)
    if wl is None:
        raise SelectionError(f"no watchlist named {name!r} in {rt.db_path}")
    selection, notes = await watch_selection(
        db, wl, instruments_url=rt.instruments_url, transport=rt.transport()
    )
    for note in notes:
        say(f"note: {note}")
    if selection is None:
        raise SelectionError(f"watchlist {name} names no underlying to collect")
    return selection


async def _record_watch(db: Any, name: str, report: RunReport) -> None:
    """The watchlist's last run and result, as ``watch list`` and the window show them."""
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.store.watchlists import record_run

    result = {
        "state": OUTCOME_TEXT[report.reason],
        "exit_code": report.exit_code,
        "summary": f"scheduled: {report.summary_line()}",
    }
    with contextlib.suppress(StoreError):
        await db.run(record_run, db, name, result)


def _left_at_risk(db: Any, selection: Any, days: int) -> list[Any]:
    """What this schedule chose that is still incomplete and vanishes within ``days``."""
    from expirytrack_desktop.collect.atrisk import Chosen, at_risk
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.timeutil import IST

    chosen = [Chosen(k, selection.expiries) for k in selection.underlyings]
    try:
        return at_risk(db, chosen, today=datetime.now(IST).date(), within_days=days)
    except StoreError:
        return []  # the run's own outcome already says what is wrong with the database


async def _attempt(
    rt: Any,
    db: Any,
    token: str,
    selection: Any,
    number: int,
    on_progress: Callable[[Any], None] | None,
    remaining: float,
    limit: float,
    *,
    watch: bool = False,
    say: Callable[[str], None] | None = None,
) -> Attempt:
    """One attempt; ``say``: where to warn, before it starts, about expiries the plan would
    reach only after they vanish from Upstox (the first attempt's estimate)."""
    from expirytrack_desktop.collect.selection import SelectionError
    from expirytrack_desktop.store import StoreError
    from expirytrack_desktop.upstox.ledger import LedgerError

    try:
        client = rt.make_client(token)
    except LedgerError as exc:  # the rate-limit ledger file cannot be used
        return Attempt(number, StopReason.STORAGE, message=str(exc))
    try:
        # waits through a network outage (bounded by the run's limit); an expired token
        # stops it (exit 3, e-mailed): nobody is there to log in (README "Long runs")
        collector = rt.make_collector(db, client, network_wait=None)
        if say is not None:
            with contextlib.suppress(StoreError, LedgerError):  # the run reports those itself
                for warning in (await collector.estimate(selection)).warnings:
                    say(f"WARNING: {warning}")
        if watch:  # one refused underlying does not stop the others
            from expirytrack_desktop.collect.watchlist import start_watch

            job, notes = await start_watch(collector, selection, on_progress=on_progress)
            if job is None:
                raise SelectionError("; ".join(notes) or "no underlying offers expiries")
        else:
            job = await collector.start(selection, on_progress=on_progress)
        try:
            result = await asyncio.wait_for(job.wait(), max(0.0, remaining))
        except TimeoutError:  # job.wait() is shielded: the job itself is still going
            job.cancel()
            counters = job.counters
            with contextlib.suppress(TimeoutError):
                counters = (await asyncio.wait_for(job.wait(), CANCEL_GRACE)).counters
            return Attempt(
                number,
                StopReason.NETWORK,
                job.id,
                counters,
                f"the run did not finish within its limit of {_hours(limit)} and was stopped "
                "(a stalled API?); what was stored stays, the next run continues",
                timed_out=True,
            )
        return Attempt(
            number, result.reason, result.job_id, result.counters, result.message, result.errors
        )
    except SelectionError as exc:  # checked before any job row exists
        return Attempt(number, StopReason.BAD_INPUT, message=str(exc))
    except StoreError as exc:
        return Attempt(number, StopReason.STORAGE, message=str(exc))
    finally:
        await client.aclose()


def state_path(data_dir: Path, name: str) -> Path:
    return data_dir / "schedules" / f"{name}.last.json"


def save_state(data_dir: Path, report: RunReport) -> None:
    atomic_write_json(state_path(data_dir, report.schedule.name), report.to_state())


def load_state(data_dir: Path, name: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(state_path(data_dir, name).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def append_log(log_dir: Path, line: str) -> None:
    """One line to ``<logs>/schedules.log`` (never a secret: callers pass summaries only)."""
    with contextlib.suppress(OSError):
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        with open(log_dir / "schedules.log", "a", encoding="utf-8") as f:
            f.write(f"{stamp} {line}\n")


def describe_exit(code: int) -> str:
    return {
        exitcodes.OK: "complete",
        exitcodes.BAD_INPUT: "bad input",
        exitcodes.NEEDS_LOGIN: "needs login: run `expirytrack login`",
        exitcodes.FAILED_ITEMS: "some items failed: the next run retries them",
        exitcodes.STORAGE: "storage problem",
        exitcodes.NETWORK: "API unreachable",
        exitcodes.CANCELLED: "cancelled",
    }.get(code, f"exit {code}")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 360 else f"{seconds:g} s"


class Watchdog:
    """Last resort for a run whose event loop is stuck (a blocking call that never returns):
    ``on_fire`` (log, then ``os._exit``) runs on a daemon thread after ``seconds`` unless
    :meth:`cancel` came first. The OS then releases the run lock with the process."""

    def __init__(self, seconds: float, on_fire: Callable[[], None]) -> None:
        self._timer = threading.Timer(seconds, on_fire)
        self._timer.daemon = True
        self._timer.name = "schedule-watchdog"

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        self._timer.cancel()


def stderr_is_tty() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
