"""The job object: one run's handle (pause/resume/cancel/wait) and the run itself."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.collect.api_calls import ApiCalls, _Stop
from expirytrack_desktop.collect.discovery import Discovery
from expirytrack_desktop.collect.events import (
    Counters,
    JobResult,
    JobState,
    Phase,
    Progress,
    StopReason,
)
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.progress import ProgressCallback, ProgressReporting
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.window_fetch import WindowFetching
from expirytrack_desktop.store import StoreError

if TYPE_CHECKING:
    from expirytrack_desktop.collect.collector import Collector


class CollectJob(ProgressReporting, ApiCalls, Discovery, WindowFetching):
    """Handle of one running job: control it and observe it. Create via :meth:`Collector.start`.

    The run's parts live in their own modules: progress (``progress``), guarded API calls
    (``api_calls``), discovery (``discovery``), candle windows (``window_fetch``).
    """

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
        self._left_to_others = False  # some planned windows were fetched by another job
        self._notes: list[str] = []
        self._paused_once = False  # then each window is checked again before it is fetched
        self._waited_for: set[int] = set()  # jobs that held windows this one planned

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
            self._paused_once = True
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

    def _set_state(self, state: JobState) -> None:
        self._state = state
        self._emit(force=True)
        self._spawn(self.db.run(self.db.update_job, self.id, status=state.value))

    def _note(self, text: str) -> None:
        """Something the user should know that is not an error: in the result and the job log."""
        if text in self._notes or len(self._notes) >= 50:
            return
        self._notes.append(text)
        self._spawn(self.db.run(self.db.add_job_log, self.id, "info", text))

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
                    t, n, eid = await self.db.run(
                        self.collector._plan_expiry, w.key, w.expiry, self.selection, span, True
                    )
                    if n == 0 and w.contracts_fetched:
                        types = "/".join(self.selection.contract_types)
                        self._note(f"{display_name(w.key)} {w.expiry}: no {types} contract listed")
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
            notes=tuple(self._notes),
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
            await self.db.run(self.db.release_claims, self.id)
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
