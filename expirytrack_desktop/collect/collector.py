"""The collection engine: discover → contracts → plan → fetch windows → write, as a job.

Usage (UI and CLI alike)::

    collector = Collector(db, client, concurrency=8)
    est = await collector.estimate(selection)                 # before a run
    job = await collector.start(selection, on_progress=cb)    # returns at once
    job.pause(); job.resume(); job.cancel()
    result = await job.wait()                                 # JobResult

Guarantees:
- every accepted request (a sub-window of a planned window, as the span cap allows) is written
  from the database's single writer thread (``db.run``) in one transaction with its own done
  mark as soon as it arrives; the event loop never waits on SQLite. When the client offers
  ``get_candles_json`` the raw bodies go to ``store_window_json`` (SQLite parses them);
- resume after a crash, cancel, network loss or token expiry = plan again: covered windows are
  never fetched again and nothing half-written is marked done;
- AuthError stops the job as ``needs_login`` without failing any item; BadInputError and
  ServerError (after the client's retries) fail that item and the run continues;
  PlanRequiredError, storage errors and an unreachable network stop the run with a message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from expirytrack_desktop.collect.events import (
    Counters,
    Estimate,
    JobResult,
    JobState,
    Phase,
    Progress,
    StopReason,
)
from expirytrack_desktop.collect.instruments import display_name, symbol_for_key
from expirytrack_desktop.collect.plan import (
    ContractTarget,
    WindowTask,
    estimate_seconds,
    plan_ranges,
    plan_windows,
    target_range,
)
from expirytrack_desktop.collect.selection import Selection, SelectionError
from expirytrack_desktop.store import Database, StoreError
from expirytrack_desktop.store.coverage import chunk_range
from expirytrack_desktop.store.database import HEARTBEAT_INTERVAL, JSON_INGEST
from expirytrack_desktop.upstox.errors import (
    AuthError,
    BadInputError,
    PlanRequiredError,
    ServerError,
    UpstoxError,
)
from expirytrack_desktop.upstox.models import Contract
from expirytrack_desktop.upstox.span import SpanPolicy, SubWindow, fetch_window

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
TYPICAL_CONTRACTS_PER_EXPIRY = 200  # estimate for expiries whose contracts are not known yet
MAX_KEPT_ERRORS = 50


def _openalgo(contract: Contract) -> str | None:
    try:
        from expirytrack_desktop.export.symbols import openalgo_for_contract

        return openalgo_for_contract(contract)
    except (ImportError, ValueError):
        return None


async def _given(value: Any) -> Any:
    if isinstance(value, BaseException):
        raise value
    return value


class OfferedExpiries(dict[str, list[date]]):
    """Live expiry list per underlying, as checked before a job; ``requests``: HTTP requests
    the check sent (they count as the job's, like the discovery they replace); ``errors``: the
    failures left to the job (it reports them instead of asking again)."""

    requests: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, Exception] = {}


class _Stop(Exception):
    """Internal: end the run now with this reason (raised inside workers)."""

    def __init__(self, reason: StopReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class _WindowTally:
    """What the committed sub-windows of one planned window added up to so far."""

    candles: int = 0
    overlapped: bool = False
    cursor: date | None = None  # first day not yet written


@dataclass(slots=True)
class _ExpiryWork:
    key: str
    expiry: date
    expiry_id: int
    contracts_fetched: bool


class Collector:
    """Runs collection jobs against one database and one client (shared rate limiter).

    Parameters are injectable for tests and benchmarks: ``clock`` (monotonic seconds, used for
    rate/ETA/throttling), ``span_policy`` (default: learned caps from the ``kv`` table),
    ``openalgo`` (symbol for each contract), ``network_failure_threshold`` (consecutive
    transport failures that mean "network down").
    """

    def __init__(
        self,
        db: Database,
        client: Any,
        *,
        concurrency: int = 8,
        span_policy: SpanPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress_interval: float = 0.1,
        persist_interval: float = 2.0,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        openalgo: Callable[[Contract], str | None] = _openalgo,
        network_failure_threshold: int | None = None,
        pid: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.db = db
        self.client = client
        self.concurrency = concurrency
        self.clock = clock
        self.progress_interval = progress_interval
        self.persist_interval = persist_interval
        self.heartbeat_interval = heartbeat_interval
        self.openalgo = openalgo
        self.network_failure_threshold = network_failure_threshold or max(6, 2 * concurrency)
        self.pid = os.getpid() if pid is None else pid
        self._span_policy = span_policy
        self._learned: dict[str, int] = {}
        self.jobs: dict[int, CollectJob] = {}

    # ---- public API ---------------------------------------------------------------------------

    @property
    def json_ingest(self) -> bool:
        """Raw bodies go to ``store_window_json`` (SQLite parses them: ~3x the Python decode)
        when the client offers ``get_candles_json`` and this SQLite can run it."""
        return JSON_INGEST and callable(getattr(self.client, "get_candles_json", None))

    async def span_policy(self) -> SpanPolicy:
        """The run's span policy; learned caps are persisted in ``kv`` (span_cap_days:<iv>)."""
        if self._span_policy is None:
            caps = await self.db.run(self.db.span_caps)
            self._span_policy = SpanPolicy(initial_caps=caps, on_learn=self._on_learn)
        return self._span_policy

    async def estimate(self, selection: Selection) -> Estimate:
        """Requests and seconds still needed for ``selection`` at the limiter's rate limits.

        Uses expiries and contracts already stored; when some are not known yet, typical
        counts stand in and ``is_estimate`` is True. Makes no API request.
        """
        policy = await self.span_policy()
        span = policy.cap_days(selection.interval)
        notes: list[str] = []
        requests = len(selection.underlyings)  # one expiry list each
        expiries = contracts = windows = 0
        guessed = False
        for key in selection.underlyings:
            known = await self.db.run(self.db.known_expiries, key)
            dates = [d for d, _, _ in known]
            if selection.expiries is not None:
                dates = list(selection.expiries)
            elif not known:
                guessed = True
                notes.append(f"{display_name(key)}: expiries not known yet (26 assumed)")
                per = len(chunk_range(target_range(date.today(), selection.months), span))
                expiries += 26
                contracts += 26 * TYPICAL_CONTRACTS_PER_EXPIRY
                windows += 26 * TYPICAL_CONTRACTS_PER_EXPIRY * per
                requests += 26 * 2
            fetched = {d for d, f, _ in known if f}
            for d in dates:
                expiries += 1
                if d not in fetched:
                    guessed = True
                    requests += 2
                    per = len(chunk_range(target_range(d, selection.months), span))
                    contracts += TYPICAL_CONTRACTS_PER_EXPIRY
                    windows += TYPICAL_CONTRACTS_PER_EXPIRY * per
                    continue
                tasks = await self.db.run(self._plan_expiry, key, d, selection, span, False)
                contracts += tasks[1]
                windows += len(tasks[0])
        if guessed and selection.expiries is not None:
            notes.append(
                f"contracts of some expiries are not known yet: {TYPICAL_CONTRACTS_PER_EXPIRY} "
                "per expiry assumed"
            )
        cap_known = selection.interval in (await self.db.run(self.db.span_caps))
        if not cap_known:
            notes.append(
                f"span cap of the candle endpoint not learned yet: {span} days per request "
                "assumed (more requests if the API allows less)"
            )
        requests += windows
        limiter = getattr(self.client, "limiter", None)
        spec_windows = list(getattr(getattr(limiter, "spec", None), "windows", ()) or ())
        seconds = estimate_seconds(requests, spec_windows, self.concurrency)
        return Estimate(
            underlyings=len(selection.underlyings),
            expiries=expiries,
            contracts=contracts,
            windows=windows,
            requests=requests,
            seconds=seconds,
            is_estimate=guessed or not cap_known,
            notes=tuple(notes),
        )

    async def check_selection(self, selection: Selection) -> OfferedExpiries:
        """The live expiry list of each underlying; :class:`SelectionError` (one line, all
        problems) when an instrument key is refused or a chosen expiry is not offered.

        Runs before a job row exists, so bad input leaves the job history untouched. Other
        failures (login, plan, network) are left to the job, which reports them resumably.
        """
        offered = OfferedExpiries()
        sent0 = int(getattr(self.client, "requests_sent", 0))
        bad: list[str] = []
        for key in selection.underlyings:
            try:
                available = list(await self.client.get_expiries(key))
            except BadInputError as exc:
                bad.append(f"{key}: {exc.message}")
                continue
            except Exception as exc:  # the job reports it and stops with its reason
                log.debug("expiry list of %s not checked: %s", key, type(exc).__name__)
                offered.errors[key] = exc
                continue
            if not available:
                bad.append(f"{key}: the API lists no expired contracts for this instrument")
                continue
            offered[key] = available
            missing = [d for d in selection.expiries or () if d not in set(available)]
            if missing:
                near = ", ".join(d.isoformat() for d in available[-3:])
                bad.append(
                    f"{display_name(key)}: expiry {', '.join(d.isoformat() for d in missing)}"
                    f" is not offered by the API (latest offered: {near})"
                )
        if bad:
            raise SelectionError("; ".join(bad))
        offered.requests = int(getattr(self.client, "requests_sent", 0)) - sent0
        return offered

    async def start(
        self,
        selection: Selection,
        *,
        on_progress: ProgressCallback | None = None,
        job_id: int | None = None,
        resume_matching: bool = True,
        offered: dict[str, list[date]] | None = None,
    ) -> CollectJob:
        """Create (or continue) a job row and start running it; returns the handle at once.

        ``job_id`` continues that job. With ``resume_matching`` a stopped job (needs_login,
        interrupted, failed, cancelled, paused and dead) with the same selection is continued
        instead of creating a new row, so rerunning a command keeps one history entry.
        A new selection is first checked against the live expiry lists
        (:meth:`check_selection`, or its result passed as ``offered``): bad input raises
        :class:`SelectionError` and creates no job.
        """
        if job_id is None and offered is None:
            offered = await self.check_selection(selection)
        params = selection.to_params()
        if job_id is None and resume_matching:
            job_id = await self.db.run(self._matching_job, params)
        if job_id is None:
            job_id = await self.db.run(
                self.db.create_job,
                "collect",
                params,
                underlyings=", ".join(display_name(k) for k in selection.underlyings),
                expiries=(
                    "all"
                    if selection.expiries is None
                    else ", ".join(d.isoformat() for d in selection.expiries)
                ),
            )
        else:
            rec = await self.db.run(self.db.get_job, job_id)
            if rec is None:
                raise ValueError(f"no job {job_id}")
            await self.db.run(self.db.update_job, job_id, retry_count=rec.retry_count + 1)
        job = CollectJob(self, job_id, selection, on_progress)
        job._offered = {**(offered or {}), **getattr(offered, "errors", {})}
        job._requests0 -= getattr(offered, "requests", 0)
        self.jobs[job_id] = job
        job._start(job._run())
        return job

    async def run(
        self, selection: Selection, *, on_progress: ProgressCallback | None = None
    ) -> JobResult:
        """``start`` + ``wait``."""
        job = await self.start(selection, on_progress=on_progress)
        return await job.wait()

    async def resume(
        self, job_id: int, *, on_progress: ProgressCallback | None = None
    ) -> CollectJob:
        """Continue a stored job (plan again from the database)."""
        rec = await self.db.run(self.db.get_job, job_id)
        if rec is None or rec.job_type != "collect":
            raise ValueError(f"no collection job {job_id}")
        return await self.start(
            Selection.from_params(rec.params), on_progress=on_progress, job_id=job_id
        )

    async def retry_failed(
        self, job_id: int, *, on_progress: ProgressCallback | None = None
    ) -> CollectJob:
        """Fetch again only the failed windows of ``job_id`` (no discovery requests)."""
        rec = await self.db.run(self.db.get_job, job_id)
        if rec is None or rec.job_type != "collect":
            raise ValueError(f"no collection job {job_id}")
        selection = Selection.from_params(rec.params)
        await self.db.run(self.db.update_job, job_id, retry_count=rec.retry_count + 1)
        job = CollectJob(self, job_id, selection, on_progress)
        self.jobs[job_id] = job
        job._start(job._run(failed_only=True))
        return job

    # ---- helpers run on the writer thread -----------------------------------------------------

    def _matching_job(self, params: dict[str, Any]) -> int | None:
        for rec in self.db.list_jobs(limit=20, job_type="collect"):
            if rec.params == params and rec.status in (
                "needs_login",
                "interrupted",
                "failed",
                "cancelled",
            ):
                return rec.id
        return None

    def _plan_expiry(
        self, key: str, expiry: date, selection: Selection, span: int | None, record: bool
    ) -> tuple[list[WindowTask], int, int | None]:
        """(tasks, contract count, expiry id) for one expiry, from the database state."""
        eid = self.db.expiry_id(key, expiry)
        rows = self.db.contracts_for(key, expiry, selection.contract_types)
        f0, t0 = target_range(expiry, selection.months)
        if record and eid is not None:
            self.db.set_coverage_target(eid, selection.interval, f0, t0)
        targets = [
            ContractTarget(r.id, r.expired_key, f0, t0, r.openalgo_symbol or r.expired_key)
            for r in rows
        ]
        windows = self.db.windows_for([r.id for r in rows], selection.interval)
        covered = {
            cid: [(w.from_date, w.to_date, w.state) for w in ws] for cid, ws in windows.items()
        }
        return plan_windows(targets, covered, selection.interval, span), len(rows), eid

    def _plan_failed(self, job_id: int, selection: Selection, span: int | None) -> list[WindowTask]:
        failed = self.db.failed_windows(job_id)
        ids = [w.contract_id for w, _ in failed]
        windows = self.db.windows_for(ids, selection.interval)
        covered = {
            cid: [(w.from_date, w.to_date, w.state) for w in ws] for cid, ws in windows.items()
        }
        ranges = [
            (
                ContractTarget(w.contract_id, key, w.from_date, w.to_date, key),
                w.from_date,
                w.to_date,
            )
            for w, key in failed
        ]
        return plan_ranges(ranges, covered, selection.interval, span)

    def _on_learn(self, interval: str, days: int) -> None:
        self._learned[interval] = days  # persisted by the next worker write (off the loop)


class CollectJob:
    """Handle of one running job: control it and observe it. Create via :meth:`Collector.start`."""

    def __init__(
        self,
        collector: Collector,
        job_id: int,
        selection: Selection,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.collector = collector
        self.db = collector.db
        self.client = collector.client
        self.id = job_id
        self.selection = selection
        self._on_progress = on_progress
        self._clock = collector.clock
        self._state = JobState.PENDING
        self._phase = Phase.DISCOVERY
        self._gate = asyncio.Event()
        self._gate.set()
        self._task: asyncio.Task[JobResult] | None = None
        self._cancel_requested = False
        self._halt = False  # set when the run stops: workers take no further item
        self._stop: _Stop | None = None
        self._counters = Counters()
        self._total = self._done = self._failed = 0
        self._errors: list[str] = []
        self._error_count = 0
        self._last_error: str | None = None
        self._current = ""
        self._t0 = self._clock()
        self._last_emit = float("-inf")
        self._last_persist = float("-inf")
        self._requests0 = int(getattr(self.client, "requests_sent", 0))
        # another job of this collector still running -> the client's counter is shared
        self._shared_client = False
        self._rate_samples: collections.deque[tuple[float, int, int]] = collections.deque(maxlen=64)
        self._consecutive_net_failures = 0
        self._pending_tasks: set[asyncio.Future[Any]] = set()
        self._beat_task: asyncio.Task[Any] | None = None
        self._saved_learned: dict[str, int] = {}  # span caps written by this job (writer thread)
        self.last_progress: Progress | None = None
        self._offered: dict[str, Any] = {}  # expiry lists (or their errors) fetched by start()

    # ---- control --------------------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def counters(self) -> Counters:
        return replace(self._counters, requests=self._requests())

    def pause(self) -> None:
        """Finish the requests in flight, start no new ones. Persisted as 'paused'."""
        if self._state == JobState.RUNNING:
            self._gate.clear()
            self._set_state(JobState.PAUSED)

    def resume(self) -> None:
        if self._state == JobState.PAUSED:
            self._gate.set()
            self._set_state(JobState.RUNNING)

    def cancel(self) -> None:
        """Stop now; requests in flight are abandoned (nothing of them is written)."""
        if self._cancel_requested:
            return
        self._cancel_requested = True
        self._halt = True
        self._gate.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self) -> JobResult:
        assert self._task is not None
        return await asyncio.shield(self._task)

    def done(self) -> bool:
        return self._task is not None and self._task.done()

    # ---- progress -------------------------------------------------------------------------------

    def _requests(self) -> int:
        """HTTP requests of this job. Exact (retries included, from the client's counter) while
        it is the only job on its client; with concurrent jobs, the job's own logical requests
        (retries not attributable)."""
        if not self._shared_client:
            others = self.collector.jobs.values()
            self._shared_client = any(j is not self and not j.done() for j in others)
        if self._shared_client:
            c = self._counters
            return c.expiry_requests + c.contract_requests + c.candle_requests
        return int(getattr(self.client, "requests_sent", 0)) - self._requests0

    def snapshot(self) -> Progress:
        now = self._clock()
        req = self._requests()
        self._rate_samples.append((now, req, self._done + self._failed))
        t_old, r_old, i_old = self._rate_samples[0]
        span = now - t_old
        rate = (
            (req - r_old) / span
            if span > 0.5
            else (req / (now - self._t0) if now > self._t0 else 0.0)
        )
        items_rate = (self._done + self._failed - i_old) / span if span > 0.5 else 0.0
        remaining = max(0, self._total - self._done - self._failed)
        eta = None
        if remaining == 0 and self._phase == Phase.CANDLES:
            eta = 0.0
        elif items_rate > 0 and self._phase == Phase.CANDLES:
            eta = remaining / items_rate
        return Progress(
            job_id=self.id,
            state=self._state,
            phase=self._phase,
            items_total=self._total,
            items_done=self._done,
            items_failed=self._failed,
            requests=req,
            candles=self._counters.candles,
            rate=rate,
            eta_seconds=eta,
            current=self._current,
            errors=self._error_count,
            last_error=self._last_error,
            elapsed=now - self._t0,
        )

    def _emit(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_emit < self.collector.progress_interval:
            return
        self._last_emit = now
        self.last_progress = self.snapshot()
        if self._on_progress is not None:
            try:
                self._on_progress(self.last_progress)
            except Exception:  # a broken observer must not break the collection
                log.exception("progress callback failed")

    def _set_state(self, state: JobState) -> None:
        self._state = state
        self._emit(force=True)
        self._spawn(self.db.run(self.db.update_job, self.id, status=state.value))

    def _spawn(self, aw: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(aw)
        self._pending_tasks.add(task)
        task.add_done_callback(self._pending_tasks.discard)
        return task

    async def _heartbeat(self) -> None:
        """Keep ``job.heartbeat_at`` fresh while the run lives, even when it makes no progress
        (rate-limit waits, pause), so other processes never take it for interrupted."""
        self._beat_task = asyncio.current_task()
        while True:
            await asyncio.sleep(self.collector.heartbeat_interval)
            with contextlib.suppress(StoreError):
                await self.db.run(self.db.update_job, self.id, heartbeat_at=self.db.now_text())

    def _error(self, text: str) -> None:
        self._error_count += 1
        self._last_error = text
        if len(self._errors) < MAX_KEPT_ERRORS:
            self._errors.append(text)

    def _count(self, **delta: int) -> None:
        c = self._counters
        self._counters = replace(c, **{k: getattr(c, k) + v for k, v in delta.items()})

    async def _persist(self, force: bool = False, **extra: Any) -> None:
        now = self._clock()
        if not force and now - self._last_persist < self.collector.persist_interval:
            return
        self._last_persist = now
        await self.db.run(
            self.db.update_job,
            self.id,
            total_items=self._total,
            done_items=self._done,
            failed_items=self._failed,
            requests=self._requests(),
            candles=self._counters.candles,
            heartbeat_at=self.db.now_text(),
            **extra,
        )

    # ---- the run --------------------------------------------------------------------------------

    def _start(self, coro: Awaitable[JobResult]) -> None:
        self._task = asyncio.ensure_future(coro)

    async def _run(self, failed_only: bool = False) -> JobResult:
        reason, message = StopReason.OK, None
        try:
            await self.db.run(
                self.db.update_job,
                self.id,
                status=JobState.RUNNING.value,
                pid=self.collector.pid,
                started_at=self.db.now_text(),
                completed_at=None,
                error_message=None,
                heartbeat_at=self.db.now_text(),
            )
            self._state = JobState.RUNNING
            self._emit(force=True)
            self._spawn(self._heartbeat())
            policy = await self.collector.span_policy()
            span = policy.cap_days(self.selection.interval)
            if failed_only:
                self._phase = Phase.CANDLES
                tasks = await self.db.run(
                    self.collector._plan_failed, self.id, self.selection, span
                )
                expiry_ids: list[int] = []
            else:
                work = await self._discover()
                await self._fetch_contracts(work, policy)
                self._phase = Phase.CANDLES
                tasks = []
                expiry_ids = []
                for w in work:
                    t, _, eid = await self.db.run(
                        self.collector._plan_expiry, w.key, w.expiry, self.selection, span, True
                    )
                    tasks.extend(t)
                    if eid is not None:
                        expiry_ids.append(eid)
            self._total += len(tasks)
            self._count(windows_planned=len(tasks))
            self._emit(force=True)
            await self._fetch_windows(tasks, policy)
            if not failed_only:
                await self._mark_complete_expiries(span)
            if self._failed:
                reason = StopReason.FAILED_ITEMS
                message = f"{self._failed} item(s) failed; rerun the same command to retry them"
        except _Stop as stop:
            reason, message = stop.reason, stop.message
        except asyncio.CancelledError:
            reason, message = StopReason.CANCELLED, "cancelled; progress so far is kept"
        except StoreError as exc:
            reason, message = StopReason.STORAGE, str(exc)
        state = {
            StopReason.OK: JobState.COMPLETED,
            StopReason.NEEDS_LOGIN: JobState.NEEDS_LOGIN,
            StopReason.CANCELLED: JobState.CANCELLED,
        }.get(reason, JobState.FAILED)
        self._phase = Phase.DONE
        self._state = state
        if message and reason not in (StopReason.FAILED_ITEMS, StopReason.BAD_INPUT):
            self._error(message)
        # Record the outcome even if cancel() is called again meanwhile.
        final = asyncio.ensure_future(self._finish(state, reason, message))
        while not final.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(final)
        self._emit(force=True)
        return JobResult(
            job_id=self.id,
            state=state,
            reason=reason,
            counters=self.counters,
            message=message,
            errors=tuple(self._errors),
        )

    async def _finish(self, state: JobState, reason: StopReason, message: str | None) -> None:
        for t in list(self._pending_tasks):
            if t is not self._beat_task:
                with contextlib.suppress(BaseException):
                    await t
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(BaseException):
                await self._beat_task
        with contextlib.suppress(StoreError):
            await self._persist(
                force=True,
                status=state.value,
                completed_at=self.db.now_text(),
                error_message=message,
            )
            if message:
                await self.db.run(
                    self.db.add_job_log,
                    self.id,
                    "info" if reason == StopReason.OK else "error",
                    message,
                )

    async def _call(self, aw: Awaitable[Any], what: str, *, answered: bool = True) -> Any:
        """Await one API call, turning run-stopping errors into _Stop.

        ``answered=False``: the awaitable signals answers itself (``_answered``), e.g. a
        window fetch that also writes, so a late success does not hide newer net failures.
        """
        await self._gate.wait()
        if self._halt:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise asyncio.CancelledError
        try:
            result = await aw
        except AuthError as exc:
            raise _Stop(
                StopReason.NEEDS_LOGIN,
                f"the access token was rejected or has expired ({exc.code or 'HTTP 401'}); "
                "log in again and rerun: collected data is kept",
            ) from None
        except PlanRequiredError:
            raise _Stop(
                StopReason.PLAN_REQUIRED,
                "the expired-instrument APIs need an Upstox Plus subscription (UDAPI1149)",
            ) from None
        except ServerError as exc:
            if exc.status is None and exc.code is None:
                self._consecutive_net_failures += 1
                if self._consecutive_net_failures >= self.collector.network_failure_threshold:
                    raise _Stop(
                        StopReason.NETWORK,
                        f"the Upstox API cannot be reached ({exc.message}); check the network "
                        "and rerun: collected data is kept",
                    ) from None
            raise
        if answered:
            self._answered()
        return result

    def _answered(self) -> None:
        """The API answered: the network is up."""
        self._consecutive_net_failures = 0

    async def _discover(self) -> list[_ExpiryWork]:
        self._phase = Phase.DISCOVERY
        work: list[_ExpiryWork] = []
        bad: list[str] = []
        for key in self.selection.underlyings:
            self._current = f"expiries of {display_name(key)}"
            self._emit()
            await self.db.run(self.db.upsert_underlying, key, symbol=symbol_for_key(key))
            try:
                cached = self._offered.pop(key, None)
                aw = _given(cached) if cached is not None else self.client.get_expiries(key)
                available = await self._call(aw, self._current)
            except BadInputError as exc:
                bad.append(f"{key}: {exc.message}")
                self._error(bad[-1])
                continue
            except ServerError as exc:
                if exc.status is None and exc.code is None and self._consecutive_net_failures:
                    raise _Stop(
                        StopReason.NETWORK,
                        f"the Upstox API cannot be reached ({exc.message}); check the network "
                        "and rerun",
                    ) from None
                self._failed += 1
                self._error(f"expiries of {key}: {exc.message}")
                continue
            finally:
                self._count(expiry_requests=1)
            if not available:
                bad.append(f"{key}: the API lists no expired contracts for this instrument")
                self._error(bad[-1])
                continue
            ids = await self.db.run(self.db.upsert_expiries, key, available)
            chosen = list(available)
            if self.selection.expiries is not None:
                missing = [d for d in self.selection.expiries if d not in ids]
                if missing:
                    near = ", ".join(d.isoformat() for d in available[-3:])
                    bad.append(
                        f"{display_name(key)}: expiry {', '.join(d.isoformat() for d in missing)}"
                        f" is not offered by the API (latest offered: {near})"
                    )
                    self._error(bad[-1])
                chosen = [d for d in self.selection.expiries if d in ids]
            known = {d: f for d, f, _ in await self.db.run(self.db.known_expiries, key)}
            work.extend(_ExpiryWork(key, d, ids[d], known.get(d, False)) for d in chosen)
        if bad:
            raise _Stop(StopReason.BAD_INPUT, "; ".join(bad))
        return work

    async def _fetch_contracts(self, work: list[_ExpiryWork], policy: SpanPolicy) -> None:
        self._phase = Phase.CONTRACTS
        todo = [w for w in work if not w.contracts_fetched]
        self._total += len(todo)
        self._emit(force=True)
        sem = asyncio.Semaphore(self.collector.concurrency)

        async def one(w: _ExpiryWork) -> None:
            async with sem:
                self._current = f"contracts of {display_name(w.key)} {w.expiry.isoformat()}"
                self._emit()
                try:
                    options = await self._call(
                        self.client.get_option_contracts(w.key, w.expiry), self._current
                    )
                    self._count(contract_requests=1)
                    futures = await self._call(
                        self.client.get_future_contracts(w.key, w.expiry), self._current
                    )
                    self._count(contract_requests=1)
                except (BadInputError, ServerError, UpstoxError) as exc:
                    if isinstance(exc, AuthError | PlanRequiredError):
                        raise
                    self._failed += 1
                    self._error(f"{self._current}: {getattr(exc, 'message', exc)}")
                    self._emit()
                    return
                await self.db.run(
                    self.db.store_contracts,
                    w.key,
                    w.expiry,
                    list(options) + list(futures),
                    openalgo=self.collector.openalgo,
                    mark_fetched=True,
                )
                w.contracts_fetched = True
                self._done += 1
                self._emit()
                await self._persist()

        await self._gather([one(w) for w in todo])

    async def _gather(self, coros: list[Awaitable[None]]) -> None:
        """Run coroutines as tasks; the first _Stop/StoreError cancels the rest and re-raises."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            for fut in asyncio.as_completed(tasks):
                await fut
        except BaseException:
            # The flag, not only cancel(): a cancellation can be swallowed below us (Python
            # 3.11's asyncio.wait_for returns a result that was ready instead of raising), and
            # a worker that lost it must still stop at its next item.
            self._halt = True
            raise
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fetch_windows(self, tasks: list[WindowTask], policy: SpanPolicy) -> None:
        queue: asyncio.Queue[WindowTask] = asyncio.Queue()
        for t in tasks:
            queue.put_nowait(t)

        async def worker() -> None:
            while not self._halt:
                try:
                    task = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._fetch_one(task, policy)

        n = min(self.collector.concurrency, max(1, len(tasks)))
        await self._gather([worker() for _ in range(n)])

    async def _fetch_one(self, task: WindowTask, policy: SpanPolicy) -> None:
        """Fetch one planned window, committing each accepted sub-window as it arrives.

        Each sub-window is written with its own ``fetch_window`` done mark in one transaction,
        so a kill, a token expiry or a failure after some sub-requests keeps what they
        brought: the planner (coverage = union of done windows) then asks only for the rest.
        A failure marks only the part not yet written as failed.
        """
        self._current = f"{task.label} {task.from_date.isoformat()}..{task.to_date.isoformat()}"
        self._emit()
        iv = task.interval
        raw = self.collector.json_ingest
        got = _WindowTally()

        async def commit(sub: SubWindow) -> None:
            self._answered()
            self._count(candle_requests=sub.requests, spans_rejected=sub.rejected)
            stored = None
            if sub.body is not None:
                try:
                    stored = await self.db.run(self._write_sub_json, task, sub)
                except ValueError as exc:
                    # A complete success body whose candles SQLite refuses (not transient):
                    # this sub-window goes through the checked Python path instead.
                    log.warning("%s: %s; fetching it through the checked path", self._current, exc)
                    again = await fetch_window(
                        self.client, task.expired_key, iv, sub.from_date, sub.to_date, policy
                    )
                    self._count(candle_requests=again.requests, spans_rejected=again.rejected)
                    sub.candles = again.candles
            if stored is None:
                stored = await self.db.run(self._write_sub, task, sub)
            got.candles += stored.candles
            got.overlapped = got.overlapped or stored.overlapped
            got.cursor = sub.to_date + timedelta(days=1)
            self._count(candles=stored.candles)
            self._emit()

        try:
            await self._call(
                fetch_window(
                    self.client,
                    task.expired_key,
                    iv,
                    task.from_date,
                    task.to_date,
                    policy,
                    raw=raw,
                    on_subwindow=commit,
                ),
                self._current,
                answered=False,
            )
        except (BadInputError, ServerError, UpstoxError) as exc:
            if isinstance(exc, AuthError | PlanRequiredError):
                raise
            text = getattr(exc, "message", str(exc))
            start = got.cursor or task.from_date
            await self.db.run(
                self.db.mark_window_failed,
                task.contract_id,
                iv,
                start,
                task.to_date,
                text,
                job_id=self.id,
            )
            self._failed += 1
            self._count(windows_failed=1)
            self._error(f"{self._current}: {text}")
            self._emit()
            return
        self._done += 1
        self._count(
            windows_fetched=1 if got.candles else 0,
            windows_empty=0 if got.candles else 1,
            windows_refetched=1 if got.overlapped else 0,
        )
        self._emit()
        await self._persist()

    def _write_sub_json(self, task: WindowTask, sub: SubWindow) -> Any:
        """On the writer thread: one sub-window from its raw body (+ done mark), then any
        learned span cap. ValueError = SQLite refused the candles; nothing was written."""
        assert sub.body is not None
        stored = self.db.store_window_json(
            task.contract_id, task.interval, sub.from_date, sub.to_date, sub.body, job_id=self.id
        )
        self._save_learned(dict(self.collector._learned))
        return stored

    def _write_sub(self, task: WindowTask, sub: SubWindow) -> Any:
        """On the writer thread: one sub-window (candles + done mark), then any learned cap."""
        stored = self.db.store_window(
            task.contract_id,
            task.interval,
            sub.from_date,
            sub.to_date,
            sub.candles,
            job_id=self.id,
        )
        self._save_learned(dict(self.collector._learned))
        return stored

    def _save_learned(self, learned: dict[str, int]) -> None:
        if learned == self._saved_learned:  # the usual case: nothing new, no query
            return
        self._saved_learned = dict(learned)
        caps = self.db.span_caps()
        for interval, days in learned.items():
            if caps.get(interval) != days:
                self.db.set_span_cap(interval, days)

    async def _mark_complete_expiries(self, span: int | None) -> None:
        """``expiry.data_fetched`` = planning again (all contract types) finds nothing to fetch.

        Cleared again when a wider history window is asked later and not yet covered.
        """
        sel = self.selection
        every_type = Selection(sel.underlyings, sel.expiries, sel.interval, sel.months)
        for key in sel.underlyings:
            known = await self.db.run(self.db.known_expiries, key)
            for d, fetched, _ in known:
                if sel.expiries is not None and d not in sel.expiries:
                    continue
                if not fetched:
                    continue
                tasks, _, eid = await self.db.run(
                    self.collector._plan_expiry, key, d, every_type, span, False
                )
                if eid is not None:
                    await self.db.run(self.db.set_data_fetched, eid, not tasks)
