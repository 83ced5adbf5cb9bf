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
  ``get_candle_rows`` its decoded answers go to ``store_window_rows`` (the fast path);
- resume after a crash, cancel, network loss or token expiry = plan again: covered windows are
  never fetched again and nothing half-written is marked done;
- AuthError stops the job as ``needs_login`` without failing any item; BadInputError and
  ServerError (after the client's retries) fail that item and the run continues;
  PlanRequiredError, storage errors and an unreachable network stop the run with a message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from expirytrack_desktop.collect.discovery import OfferedExpiries, check_selection
from expirytrack_desktop.collect.estimate import estimate
from expirytrack_desktop.collect.events import Estimate, JobResult
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.job import CollectJob
from expirytrack_desktop.collect.plan import (
    ContractTarget,
    WindowTask,
    plan_ranges,
    plan_windows,
    target_range,
)
from expirytrack_desktop.collect.progress import ProgressCallback
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.store import Database
from expirytrack_desktop.store.database import HEARTBEAT_INTERVAL
from expirytrack_desktop.upstox.models import Contract
from expirytrack_desktop.upstox.span import SpanPolicy

__all__ = ["CollectJob", "Collector", "OfferedExpiries", "ProgressCallback"]


def _openalgo(contract: Contract) -> str | None:
    try:
        from expirytrack_desktop.export.symbols import openalgo_for_contract

        return openalgo_for_contract(contract)
    except (ImportError, ValueError):
        return None


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
        claim_poll: float = 2.0,
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
        # seconds between looks at windows another live job is fetching (store/claims.py)
        self.claim_poll = claim_poll
        self._span_policy = span_policy
        self._learned: dict[str, int] = {}
        self.jobs: dict[int, CollectJob] = {}

    # ---- public API ---------------------------------------------------------------------------

    @property
    def row_ingest(self) -> bool:
        """Answers go to ``store_window_rows`` as decoded (one typed decode in C, timestamps
        converted by SQLite) when the client offers ``get_candle_rows``."""
        return callable(getattr(self.client, "get_candle_rows", None))

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
        return await estimate(self, selection)

    async def check_selection(self, selection: Selection) -> OfferedExpiries:
        """The live expiry list of each underlying; :class:`SelectionError` (one line, all
        problems) when an instrument key is refused or a chosen expiry is not offered.

        Runs before a job row exists, so bad input leaves the job history untouched. Other
        failures (login, plan, network) are left to the job, which reports them resumably.
        """
        return await check_selection(self, selection)

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
        ranges = [
            (
                ContractTarget(w.contract_id, key, w.from_date, w.to_date, key),
                w.from_date,
                w.to_date,
            )
            for w, key in failed
        ]
        return self._plan_ranges(ranges, selection.interval, span)

    def _plan_again(self, tasks: list[WindowTask], span: int | None) -> list[WindowTask]:
        """What is still missing of these windows (another job may have fetched them)."""
        if not tasks:
            return []
        ranges = [
            (
                ContractTarget(t.contract_id, t.expired_key, t.from_date, t.to_date, t.label),
                t.from_date,
                t.to_date,
            )
            for t in tasks
        ]
        return self._plan_ranges(ranges, tasks[0].interval, span)

    def _plan_ranges(
        self, ranges: list[tuple[ContractTarget, date, date]], interval: str, span: int | None
    ) -> list[WindowTask]:
        windows = self.db.windows_for({t.contract_id for t, _, _ in ranges}, interval)
        covered = {
            cid: [(w.from_date, w.to_date, w.state) for w in ws] for cid, ws in windows.items()
        }
        return plan_ranges(ranges, covered, interval, span)

    def _on_learn(self, interval: str, days: int) -> None:
        self._learned[interval] = days  # persisted by the next worker write (off the loop)
