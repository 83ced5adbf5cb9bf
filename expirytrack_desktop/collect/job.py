"""The job object: one run's handle (pause/resume/cancel/wait) and the run itself.

A job is put together from small parts that receive what they need: its progress
(:class:`JobProgress`), its API gate (:class:`ApiGate`: pause, stop, answers in flight),
discovery (:class:`Discovery`) and window fetching (:class:`WindowFetcher`), all under one
:class:`RunConfig` fixed when the job starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from expirytrack_desktop.collect.api_gate import ApiGate, RunStopped
from expirytrack_desktop.collect.config import RunConfig
from expirytrack_desktop.collect.discovery import Discovery, ExpiryWork
from expirytrack_desktop.collect.events import (
    Counters,
    JobResult,
    JobState,
    Phase,
    Progress,
    StopReason,
)
from expirytrack_desktop.collect.plan import WindowTask, deadline_first
from expirytrack_desktop.collect.planning import plan_expiry, plan_failed
from expirytrack_desktop.collect.progress import JobProgress, ProgressCallback
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.span_caps import CapSaver, SpanCaps
from expirytrack_desktop.collect.waiting import LoginWatch, NetworkWatch
from expirytrack_desktop.collect.window_fetch import WindowFetcher
from expirytrack_desktop.store import Database, StoreError
from expirytrack_desktop.upstox.ledger import LedgerError

# How often a run that gets no answers (a budget, network or login wait) still reports progress.
IDLE_PROGRESS_S = 5.0


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job runs against: the database, the client, the shared span caps, and whether
    a job other than the one given shares the client now (its request counter is then not
    that job's alone)."""

    db: Database
    client: Any
    caps: SpanCaps
    others_running: Callable[[object], bool]


class CollectJob:
    """Handle of one running job: control it and observe it. Create via :meth:`Collector.start`.

    ``offered``: expiry lists (or their errors) fetched before the job by the selection check;
    ``requests_before``: the client's request counter this job's requests count from.
    """

    def __init__(
        self,
        context: JobContext,
        job_id: int,
        selection: Selection,
        config: RunConfig,
        *,
        on_progress: ProgressCallback | None = None,
        offered: dict[str, Any] | None = None,
        requests_before: int | None = None,
    ) -> None:
        self._ctx = context
        self._db = context.db
        self.id = job_id
        self.selection = selection
        self.config = config
        client = context.client
        if requests_before is None:
            requests_before = int(getattr(client, "requests_sent", 0))
        self._offered = dict(offered or {})
        self._gate = ApiGate(
            net_failure_limit=config.net_failure_limit,
            drain_timeout=config.drain_timeout,
            network=self._network_watch(client, config),
            login=self._login_watch(client, config),
            token_in_use=lambda: getattr(client, "access_token", None),
        )
        self._progress = JobProgress(
            job_id,
            context.db,
            clock=config.clock,
            progress_interval=config.progress_interval,
            persist_interval=config.persist_interval,
            requests_sent=lambda: int(getattr(client, "requests_sent", 0)),
            others_running=lambda: context.others_running(self),
            requests_before=requests_before,
            on_progress=on_progress,
            limiter=getattr(client, "limiter", None),
        )
        self._task: asyncio.Task[JobResult] | None = None
        self._cancel_requested = False
        self._pending_tasks: set[asyncio.Future[Any]] = set()
        self._beat_task: asyncio.Task[Any] | None = None
        self._fetcher: WindowFetcher | None = None

    # ---- waiting instead of stopping (README "Long runs") -------------------------------------

    def _network_watch(self, client: Any, config: RunConfig) -> NetworkWatch | None:
        probe = getattr(client, "probe", None)
        if config.network_wait == 0 or not callable(probe):
            return None
        return NetworkWatch(
            probe,
            limit=config.network_wait,
            first=config.probe_first,
            cap=config.probe_max,
            notify=self._waiting,
            wall=config.wall,
            mono=config.clock,
        )

    def _login_watch(self, client: Any, config: RunConfig) -> LoginWatch | None:
        if config.token_source is None or not callable(getattr(client, "set_access_token", None)):
            return None
        return LoginWatch(
            config.token_source,
            client.set_access_token,
            limit=config.login_wait,
            poll=config.token_poll,
            notify=self._waiting,
            mono=config.clock,
            how_to_login=config.how_to_login,
        )

    def _waiting(self, kind: str | None, text: str | None) -> None:
        """The run waits for ``kind`` (or no longer waits): progress at once, and the job log
        when a wait starts or ends (the job row stays 'running': its process is alive)."""
        prog = self._progress
        before = prog.waiting_for
        if kind == before and text == prog.waiting:
            return
        prog.waiting_for, prog.waiting = kind, text
        prog.emit(force=True)
        if kind != before:
            back = {"network": "the API answers again", "login": "a new login is in use"}
            line = text if kind is not None else f"{back.get(before or '', 'done')}: continuing"
            if before is not None or kind is not None:
                self._spawn(self._db.run(self._db.add_job_log, self.id, "info", line))

    # ---- control --------------------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        return self._progress.state

    @property
    def counters(self) -> Counters:
        return self._progress.totals()

    @property
    def last_progress(self) -> Progress | None:
        return self._progress.last_progress

    def snapshot(self) -> Progress:
        return self._progress.snapshot()

    def pause(self) -> None:
        """Finish the requests in flight, start no new ones. Persisted as 'paused'."""
        if self.state == JobState.RUNNING:
            self._gate.pause()
            self._set_state(JobState.PAUSED)

    def resume(self) -> None:
        if self.state == JobState.PAUSED:
            self._gate.unpause()
            self._set_state(JobState.RUNNING)

    def cancel(self) -> None:
        """Stop now: nothing more is sent; answers already on their way are still committed."""
        if self._cancel_requested:
            return
        self._cancel_requested = True
        self._gate.halt()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self) -> JobResult:
        assert self._task is not None
        return await asyncio.shield(self._task)

    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def start(self, *, failed_only: bool = False) -> None:
        """Start the run (once); ``failed_only``: fetch again only this job's failed windows."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run(failed_only))

    # ---- helpers ------------------------------------------------------------------------------

    def _set_state(self, state: JobState) -> None:
        self._progress.state = state
        self._progress.emit(force=True)
        self._spawn(self._db.run(self._db.update_job, self.id, status=state.value))

    def _note(self, text: str) -> None:
        """Something the user should know that is not an error: in the result and the job log."""
        if self._progress.note(text):
            self._spawn(self._db.run(self._db.add_job_log, self.id, "info", text))

    def _spawn(self, aw: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(aw)
        self._pending_tasks.add(task)
        task.add_done_callback(self._pending_tasks.discard)
        return task

    async def _heartbeat(self) -> None:
        """Keep ``job.heartbeat_at`` fresh while the run lives, even when it makes no progress
        (rate-limit waits, pause), so other processes never take it for interrupted."""
        self._beat_task = asyncio.current_task()
        clock, beat = self.config.clock, self.config.heartbeat_interval
        last = clock()
        while True:
            await asyncio.sleep(min(beat, IDLE_PROGRESS_S))
            # a long budget or network wait still tells its ETA and why (no answers come)
            self._progress.emit()
            if clock() - last < beat:
                continue
            last = clock()
            with contextlib.suppress(StoreError):
                await self._db.run(self._db.update_job, self.id, heartbeat_at=self._db.now_text())

    # ---- the run --------------------------------------------------------------------------------

    async def _run(self, failed_only: bool) -> JobResult:
        prog = self._progress
        reason, message = StopReason.OK, None
        try:
            rec = await self._db.run(self._db.get_job, self.id)
            if rec is not None:  # a resumed job counts on from its earlier runs
                prog.carry(rec.requests, rec.candles, rec.done_items)
            await self._db.run(
                self._db.update_job,
                self.id,
                status=JobState.RUNNING.value,
                pid=self.config.pid,
                started_at=(rec.started_at if rec is not None else None) or self._db.now_text(),
                completed_at=None,
                error_message=None,
                heartbeat_at=self._db.now_text(),
            )
            prog.state = JobState.RUNNING
            prog.emit(force=True)
            self._spawn(self._heartbeat())
            self._gate.enter_scope()
            policy = await self._ctx.caps.policy()
            fetcher = WindowFetcher(
                self._db,
                self._ctx.client,
                self.id,
                self.selection,
                self._gate,
                prog,
                policy,
                CapSaver(self._db, self._ctx.caps),
                concurrency=self.config.concurrency,
                claim_poll=self.config.claim_poll,
                note=self._note,
            )
            self._fetcher = fetcher
            span = policy.cap_days(self.selection.interval)
            if failed_only:
                prog.phase = Phase.CANDLES
                tasks = await self._db.run(
                    plan_failed, self._db, self.id, self.selection.interval, span
                )
                await self._fetch_planned(tasks)
            else:
                await self._discover_and_fetch(span)
            if not failed_only:
                await fetcher.mark_complete_expiries()
            if prog.failed:
                reason = StopReason.FAILED_ITEMS
                message = f"{prog.failed} item(s) failed; rerun the same command to retry them"
        except RunStopped as stop:
            reason, message = stop.reason, stop.message
        except asyncio.CancelledError:
            reason, message = StopReason.CANCELLED, "cancelled; progress so far is kept"
        except (StoreError, LedgerError) as exc:  # the database, or the rate-limit ledger file
            reason, message = StopReason.STORAGE, str(exc)
        return await self._end(reason, message)

    async def _fetch_planned(self, tasks: list[WindowTask]) -> None:
        prog = self._progress
        prog.total += len(tasks)
        prog.count(windows_planned=len(tasks))
        prog.emit(force=True)
        if tasks and self._fetcher is not None:
            await self._fetcher.fetch(tasks)
        if self._gate.halted:
            raise asyncio.CancelledError

    async def _discover_and_fetch(self, span: int) -> None:
        """Expiries, then one expiry date at a time, oldest first: its contracts, then its
        missing windows. A universe lists ~1,500 expiries (two contract-list requests each,
        about half an hour of the 30-minute budget): listing them all before any candle would
        hold back the candles that vanish first."""
        discovery = Discovery(
            self._db,
            self._ctx.client,
            self.selection,
            self._gate,
            self._progress,
            offered=self._offered,
            openalgo=self.config.openalgo,
            concurrency=self.config.concurrency,
        )
        work = await discovery.expiries()  # oldest first across underlyings
        # every contract list to come is in the total from the start, each date's windows
        # once its lists are in: the total only grows by windows not known before
        self._progress.total += sum(1 for w in work if not w.contracts_fetched)
        for _, same_day in itertools.groupby(work, key=lambda w: w.expiry):
            group = list(same_day)
            await discovery.contracts(group, counted=True)
            if self._gate.halted:
                raise asyncio.CancelledError
            self._progress.phase = Phase.CANDLES
            if self.selection.strikes is not None:
                await self._fetch_price_futures(group, span)
            await self._fetch_planned(deadline_first(await self._plan(discovery, group, span)))

    async def _plan(
        self, discovery: Discovery, work: list[ExpiryWork], span: int
    ) -> list[WindowTask]:
        """The windows still missing of ``work``'s expiries."""
        tasks: list[WindowTask] = []
        for w in work:
            plan = await self._db.run(
                plan_expiry, self._db, w.key, w.expiry, self.selection, span, record=True
            )
            if plan.contracts == 0 and w.contracts_fetched:
                types = "/".join(self.selection.contract_types)
                self._note(f"{discovery.name(w.key)} {w.expiry}: no {types} contract listed")
            if plan.note and "all strikes taken" in plan.note:
                self._note(f"{discovery.name(w.key)} {plan.note}")
            tasks.extend(plan.tasks)
        return tasks

    async def _fetch_price_futures(self, work: list[ExpiryWork], span: int) -> None:
        """Strike filter: the futures of every expiry first (their closes are the prices the
        options are filtered by), whether or not the selection keeps futures."""
        sel = self.selection
        futures = Selection(sel.underlyings, sel.expiries, sel.interval, sel.months, ("FUT",))
        tasks: list[WindowTask] = []
        for w in work:
            plan = await self._db.run(plan_expiry, self._db, w.key, w.expiry, futures, span)
            tasks.extend(plan.tasks)
        if tasks and self._fetcher is not None:
            prog = self._progress
            prog.total += len(tasks)
            prog.count(windows_planned=len(tasks))
            prog.emit(force=True)
            await self._fetcher.fetch(deadline_first(tasks))
            if self._gate.halted:
                raise asyncio.CancelledError

    async def _end(self, reason: StopReason, message: str | None) -> JobResult:
        state = {
            StopReason.OK: JobState.COMPLETED,
            StopReason.NEEDS_LOGIN: JobState.NEEDS_LOGIN,
            StopReason.CANCELLED: JobState.CANCELLED,
        }.get(reason, JobState.FAILED)
        prog = self._progress
        prog.phase = Phase.DONE
        prog.state = state
        if message and reason not in (StopReason.FAILED_ITEMS, StopReason.BAD_INPUT):
            prog.error(message)
        # Record the outcome even if cancel() is called again meanwhile.
        final = asyncio.ensure_future(self._finish(state, reason, message))
        while not final.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(final)
        prog.emit(force=True)
        return JobResult(
            job_id=self.id,
            state=state,
            reason=reason,
            counters=self.counters,
            message=message,
            errors=tuple(prog.errors),
            notes=tuple(prog.notes),
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
            await self._db.run(self._db.release_claims, self.id)
        with contextlib.suppress(StoreError):
            await self._progress.persist(
                force=True,
                status=state.value,
                completed_at=self._db.now_text(),
                error_message=message,
            )
            if message:
                await self._db.run(
                    self._db.add_job_log,
                    self.id,
                    # a cancel or pause is the user's choice, not a failure of the run
                    "info" if reason in (StopReason.OK, StopReason.CANCELLED) else "error",
                    message,
                )
