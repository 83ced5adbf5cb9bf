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
  never fetched again and nothing half-written is marked done; when a run stops, answers
  already on their way are still committed;
- windows are fetched deadline-first: oldest expiry first, across underlyings and, through
  the limiter's priorities, across the jobs sharing it;
- each job runs under its own :class:`RunConfig`, fixed when it starts;
- AuthError stops the job as ``needs_login`` without failing any item; BadInputError and
  ServerError (after the client's retries) fail that item and the run continues;
  PlanRequiredError, storage errors and an unreachable network stop the run with a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from expirytrack_desktop.collect.config import RunConfig, openalgo_symbol
from expirytrack_desktop.collect.discovery import OfferedExpiries, check_selection
from expirytrack_desktop.collect.estimate import estimate
from expirytrack_desktop.collect.events import Estimate, JobResult
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.job import CollectJob, JobContext
from expirytrack_desktop.collect.planning import matching_job
from expirytrack_desktop.collect.progress import ProgressCallback
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.span_caps import SpanCaps
from expirytrack_desktop.store import Database
from expirytrack_desktop.store.database import HEARTBEAT_INTERVAL
from expirytrack_desktop.store.health import check_database
from expirytrack_desktop.upstox.models import Contract
from expirytrack_desktop.upstox.span import SpanPolicy

__all__ = ["Collector", "OfferedExpiries"]


class Collector:
    """Runs collection jobs against one database and one client (shared rate limiter).

    The keyword parameters are the defaults of every job's :class:`RunConfig` (``concurrency``
    can be chosen per job); ``span_policy`` (default: learned caps from the ``kv`` table) is
    shared by all jobs.
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
        openalgo: Callable[[Contract], str | None] = openalgo_symbol,
        network_failure_threshold: int | None = None,
        pid: int | None = None,
        claim_poll: float = 2.0,
        drain_timeout: float = 5.0,
        **waiting: Any,
    ) -> None:
        self.db = db
        self.client = client
        config = RunConfig(
            concurrency=concurrency,
            clock=clock,
            progress_interval=progress_interval,
            persist_interval=persist_interval,
            heartbeat_interval=heartbeat_interval,
            network_failure_threshold=network_failure_threshold,
            claim_poll=claim_poll,
            drain_timeout=drain_timeout,
            openalgo=openalgo,
        )
        config = replace(config, **waiting)
        self.config = config if pid is None else replace(config, pid=pid)
        self.caps = SpanCaps(db, span_policy)
        self.jobs: dict[int, CollectJob] = {}

    @property
    def concurrency(self) -> int:
        """Requests in flight per job unless a job is started with its own."""
        return self.config.concurrency

    def _context(self) -> JobContext:
        return JobContext(self.db, self.client, self.caps, self._others_running)

    def _others_running(self, job: object) -> bool:
        return any(j is not job and not j.done() for j in self.jobs.values())

    # ---- public API ---------------------------------------------------------------------------

    async def span_policy(self) -> SpanPolicy:
        """The span policy all jobs share; learned caps are persisted in ``kv``."""
        return await self.caps.policy()

    async def estimate(
        self,
        selection: Selection | Sequence[Selection],
        *,
        concurrency: int | None = None,
        now: datetime | None = None,
    ) -> Estimate:
        """Requests and seconds still needed for ``selection`` (or several, run as one job
        each, together) under the limiter's rate windows and the budget already used.

        Uses expiries and contracts already stored; when some are not known yet, typical
        counts stand in and ``is_estimate`` is True. ``late`` lists the expiries the plan
        would reach after they vanish (walked deadline-first from ``now``, default the wall
        clock). Makes no API request.
        """
        selections = [selection] if isinstance(selection, Selection) else list(selection)
        config = self.config.with_concurrency(concurrency)
        return await estimate(
            self.db, self.client, self.caps, selections, concurrency=config.concurrency, now=now
        )

    async def check_selection(self, selection: Selection) -> OfferedExpiries:
        """The live expiry list of each underlying; :class:`SelectionError` (one line, all
        problems) when an instrument key is refused or a chosen expiry is not offered.

        Runs before a job row exists, so bad input leaves the job history untouched. Other
        failures (login, plan, network) are left to the job, which reports them resumably.
        """
        names = await self.db.run(self.db.underlying_names, selection.underlyings)
        return await check_selection(self.client, selection, names)

    async def start(
        self,
        selection: Selection,
        *,
        on_progress: ProgressCallback | None = None,
        job_id: int | None = None,
        resume_matching: bool = True,
        offered: dict[str, list[date]] | None = None,
        concurrency: int | None = None,
    ) -> CollectJob:
        """Create (or continue) a job row and start running it; returns the handle at once.

        ``job_id`` continues that job. With ``resume_matching`` a stopped job (needs_login,
        interrupted, failed, cancelled, paused and dead) with the same selection is continued
        instead of creating a new row, so rerunning a command keeps one history entry.
        A new selection is first checked against the live expiry lists
        (:meth:`check_selection`, or its result passed as ``offered``): bad input raises
        :class:`SelectionError` and creates no job. ``concurrency``: this job's requests in
        flight (default: the collector's); fixed for the job's whole run.
        """
        # A damaged database stops here, before a request or a job row (once per Database).
        await self.db.run(check_database, self.db)
        config = self.config.with_concurrency(concurrency)
        if job_id is None and offered is None:
            offered = await self.check_selection(selection)
        params = selection.to_params()
        if job_id is None and resume_matching:
            job_id = await self.db.run(matching_job, self.db, params)
        if job_id is None:
            names = await self.db.run(self.db.underlying_names, selection.underlyings)
            job_id = await self.db.run(
                self.db.create_job,
                "collect",
                params,
                underlyings=", ".join(display_name(k, names) for k in selection.underlyings),
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
        known = offered.known() if isinstance(offered, OfferedExpiries) else dict(offered or {})
        before = int(getattr(self.client, "requests_sent", 0))
        job = CollectJob(
            self._context(),
            job_id,
            selection,
            config,
            on_progress=on_progress,
            offered=known,
            requests_before=before - getattr(offered, "requests", 0),
        )
        self.jobs[job_id] = job
        job.start()
        return job

    async def run(
        self,
        selection: Selection,
        *,
        on_progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> JobResult:
        """``start`` + ``wait``."""
        job = await self.start(selection, on_progress=on_progress, concurrency=concurrency)
        return await job.wait()

    async def resume(
        self,
        job_id: int,
        *,
        on_progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> CollectJob:
        """Continue a stored job (plan again from the database)."""
        rec = await self.db.run(self.db.get_job, job_id)
        if rec is None or rec.job_type != "collect":
            raise ValueError(f"no collection job {job_id}")
        return await self.start(
            Selection.from_params(rec.params),
            on_progress=on_progress,
            job_id=job_id,
            concurrency=concurrency,
        )

    async def retry_failed(
        self,
        job_id: int,
        *,
        on_progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> CollectJob:
        """Fetch again only the failed windows of ``job_id`` (no discovery requests)."""
        await self.db.run(check_database, self.db)  # as in start()
        rec = await self.db.run(self.db.get_job, job_id)
        if rec is None or rec.job_type != "collect":
            raise ValueError(f"no collection job {job_id}")
        selection = Selection.from_params(rec.params)
        await self.db.run(self.db.update_job, job_id, retry_count=rec.retry_count + 1)
        config = self.config.with_concurrency(concurrency)
        job = CollectJob(self._context(), job_id, selection, config, on_progress=on_progress)
        self.jobs[job_id] = job
        job.start(failed_only=True)
        return job
