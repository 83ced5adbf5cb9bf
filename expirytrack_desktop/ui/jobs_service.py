"""Collection jobs for the window: start, watch, pause, resume, retry, cancel, list.

Live progress only records the latest event per job in :class:`JobsModel` (the jobs page's
timer repaints); job rows come from the database, where the engine keeps each job's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from expirytrack_desktop.collect import JobResult, Progress, display_name
from expirytrack_desktop.store.rows import JobRecord
from expirytrack_desktop.ui.choices import WizardSelection
from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.engine_protocol import JobHandle
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.models import JobRow, JobsModel
from expirytrack_desktop.ui.signals import ControllerSignals
from expirytrack_desktop.ui.tasks import TaskManager

log = logging.getLogger(__name__)


@dataclass(slots=True)
class JobLog:
    """What the jobs page shows under the table for one job."""

    entries: list[tuple[str, str, str]] = field(default_factory=list)  # (at, level, message)
    live: Progress | None = None


def utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def job_row_from_record(r: JobRecord) -> JobRow:
    return JobRow(
        id=r.id,
        underlyings=r.underlyings or "",
        expiries=r.expiries or "",
        status=r.status or "",
        total=r.total_items or 0,
        done=r.done_items or 0,
        failed=r.failed_items or 0,
        requests=r.requests or 0,
        candles=r.candles or 0,
        started_at=r.started_at,
        completed_at=r.completed_at,
        error=r.error_message,
    )


def live_status(p: Progress) -> str:
    """A running job's status in the jobs table: "needs_login" while it waits for a login
    (shown "paused: log in again"), else its state."""
    return "needs_login" if p.waiting_for == "login" else str(p.state)


class JobsService:
    def __init__(
        self,
        host: EngineHost,
        tasks: TaskManager,
        signals: ControllerSignals,
        model: JobsModel,
    ) -> None:
        self.host = host
        self.tasks = tasks
        self.signals = signals
        self.model = model
        self.handles: dict[int, JobHandle] = {}
        self._asked_login: set[int] = set()  # jobs waiting for a login the user was told of

    # --- start -----------------------------------------------------------------------------
    async def start_collection(self, sel: WizardSelection) -> int:
        """One job per underlying (their expiry dates differ); returns the first job id."""
        rt = await self.host.ready()
        if not rt.client.has_token:
            raise RuntimeError("Not logged in: use Login first.")
        api = self.host.require_api()
        first: int | None = None
        for key, expiries in sel.expiries.items():
            job = await api.start(sel.params_for(key, expiries), sel.concurrency)
            self._track(job)
            first = job.id if first is None else first
            self.model.upsert(
                JobRow(
                    id=job.id,
                    underlyings=sel.labels.get(key) or display_name(key),
                    expiries=", ".join(d.isoformat() for d in sorted(expiries)),
                    status="running",
                    started_at=utc_now_text(),
                )
            )
        if first is None:
            raise ValueError("Nothing selected: choose at least one expiry.")
        return first

    def _track(self, job: JobHandle) -> None:
        self.handles[job.id] = job
        self.tasks.schedule(self._watch(job))

    async def _watch(self, job: JobHandle) -> None:
        try:
            result: JobResult = await self.host.require_api().wait(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("Job %s stopped: %s", job.id, describe_error(exc))
            await self.reload()
            return
        state = str(result.state)
        if result.message:
            level = logging.INFO if state == "completed" else logging.WARNING
            log.log(level, "Job %s %s: %s", job.id, state, result.message)
        else:
            log.info("Job %s %s", job.id, state)
        if self.handles.get(job.id) is job:
            del self.handles[job.id]
        await self.reload()
        self.signals.jobLogChanged.emit(job.id)
        self.signals.databaseChanged.emit()
        self.signals.jobFinished.emit(job.id, state)
        if state == "needs_login":
            self.signals.loginNeeded.emit(
                "The Upstox access token was rejected or has expired. Log in again."
            )

    def on_progress(self, p: Progress) -> None:
        """Engine event (window's loop): record only; the jobs page timer repaints. A run
        that starts waiting for a login (its token expired) asks for one, once per wait."""
        if p.waiting_for == "login" and p.job_id not in self._asked_login:
            self._asked_login.add(p.job_id)
            self.signals.loginNeeded.emit(
                "The Upstox access token has expired (it does daily at 03:30 IST). Log in "
                "again: the running collections wait and then continue by themselves."
            )
        elif p.waiting_for != "login":
            self._asked_login.discard(p.job_id)

        def apply(row: JobRow) -> None:
            row.status = live_status(p)
            row.extra["waiting"] = p.waiting if p.waiting_for == "network" else None
            row.total = p.items_total
            row.done = p.items_done
            row.failed = p.items_failed
            row.requests = p.requests
            row.candles = p.candles
            row.rate = p.rate
            row.eta = p.eta_seconds
            row.error = p.last_error
            row.extra["current"] = p.current
            row.extra["phase"] = str(p.phase)
            if row.started_at is None:
                row.started_at = utc_now_text()

        self.model.post(p.job_id, apply)

    # --- queries ---------------------------------------------------------------------------
    def is_running(self, job_id: int) -> bool:
        h = self.handles.get(job_id)
        return h is not None and not h.done()

    def running(self) -> list[int]:
        return [job_id for job_id, h in self.handles.items() if not h.done()]

    async def wait(self, job_id: int) -> JobResult | None:
        """Wait for a running job to end; returns its engine result (None if not running)."""
        h = self.handles.get(job_id)
        if h is None:
            return None
        return await self.host.require_api().wait(h)

    async def reload(self) -> None:
        rt = self.host.runtime
        if rt is None:
            return  # the database could not be opened: the status bar and log say why
        records = await rt.db.run(rt.db.list_jobs, 200, "collect")
        rows = []
        for rec in records:
            row = job_row_from_record(rec)
            h = self.handles.get(rec.id)
            if h is None or h.done():
                self.model.drop_pending(rec.id)  # a late event of an ended run
            p = None if h is None or h.done() else h.last_progress
            if h is not None and p is not None:
                row.status = live_status(p)
                row.extra["waiting"] = p.waiting if p.waiting_for == "network" else None
                row.total, row.done, row.failed = p.items_total, p.items_done, p.items_failed
                row.requests, row.candles = p.requests, p.candles
                row.rate, row.eta = p.rate, p.eta_seconds
            rows.append(row)
        self.model.set_rows(rows)

    async def log(self, job_id: int) -> JobLog:
        rt = self.host.runtime
        if rt is None:
            return JobLog()
        entries = await rt.db.run(rt.db.job_logs, job_id, 500)
        h = self.handles.get(job_id)
        return JobLog(list(entries), None if h is None else h.last_progress)

    # --- control ---------------------------------------------------------------------------
    async def cancel(self, job_id: int) -> None:
        h = self.handles.get(job_id)
        if h is not None and not h.done():
            api = self.host.require_api()
            api.cancel(h)
            with contextlib.suppress(BaseException):
                await api.wait(h)
        else:
            rt = await self.host.ready()
            await rt.db.run(rt.db.update_job, job_id, status="cancelled")
            await rt.db.run(rt.db.add_job_log, job_id, "info", "cancelled from the window")
        await self.reload()

    def _show_status(self, job_id: int, status: str) -> None:
        def apply(row: JobRow) -> None:
            row.status = status

        self.model.post(job_id, apply)
        self.model.flush()

    async def pause(self, job_id: int) -> None:
        h = self.handles.get(job_id)
        if h is not None and not h.done():
            self.host.require_api().pause(h)
            self._show_status(job_id, "paused")

    async def resume(self, job_id: int) -> None:
        h = self.handles.get(job_id)
        if h is not None and not h.done():
            p = h.last_progress
            if p is not None and p.waiting_for == "login":  # it goes on once logged in
                self.signals.loginNeeded.emit("Log in again: the collection then continues.")
                return
            self.host.require_api().unpause(h)
            self._show_status(job_id, "running")
            return
        rt = await self.host.ready()
        if await self._running_elsewhere(job_id):
            return
        if not rt.client.has_token:
            self.signals.loginNeeded.emit("Log in to resume this collection.")
            return
        job = await self.host.require_api().resume(job_id)
        self._track(job)
        self._show_status(job_id, "running")

    async def retry(self, job_id: int) -> None:
        await self.host.ready()
        if self.is_running(job_id) or await self._running_elsewhere(job_id):
            return
        job = await self.host.require_api().retry(job_id)
        self._track(job)
        self._show_status(job_id, "running")

    async def _running_elsewhere(self, job_id: int) -> bool:
        """The job runs in another live process (another window, a scheduled run): say so
        instead of running it twice."""
        rt = await self.host.ready()
        records = await rt.db.run(rt.db.list_jobs, 200, "collect")  # dead runs -> interrupted
        if any(r.id == job_id and r.status == "running" for r in records):
            log.warning("Job %s is running in another window or process; not started here", job_id)
            await self.reload()
            return True
        return False

    async def resume_after_login(self) -> None:
        """Jobs stopped for an expired token continue (they re-plan what is missing)."""
        rt = await self.host.ready()
        records = await rt.db.run(rt.db.list_jobs, 200, "collect")
        for rec in records:
            if rec.status == "needs_login" and not self.is_running(rec.id):
                log.info("Resuming job %s after login", rec.id)
                await self.resume(rec.id)

    async def stop_all(self, timeout: float = 15) -> list[int]:
        """Stop every running job because the window closes; returns their ids.

        What they fetched is stored, and they come back "interrupted" (resumable, no error),
        not "cancelled": nobody cancelled them.
        """
        api = self.host.api
        rt = self.host.runtime
        if api is None:
            return []
        stopped = []
        for job_id, h in list(self.handles.items()):
            if h.done():
                continue
            api.cancel(h)
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(timeout):
                    await api.wait(h)
            stopped.append(job_id)
        if rt is not None:
            for job_id in stopped:
                with contextlib.suppress(Exception):
                    await rt.db.run(
                        rt.db.update_job,
                        job_id,
                        status="interrupted",
                        error_message=None,
                        completed_at=None,
                    )
                    await rt.db.run(
                        rt.db.add_job_log,
                        job_id,
                        "info",
                        "stopped because the window was closed; resume it any time",
                    )
        return stopped
