"""The window's one door to the engine: adapts engine calls and callbacks to Qt signals.

Pages never import the engine; they call the controller. Background work runs as named
asyncio tasks with strong references ("preemptive": scheduling a name again cancels the
previous task of that name), database reads in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from expirytrack_desktop.ui import dbread
from expirytrack_desktop.ui.models import CoverageCell, JobRow, JobsModel
from expirytrack_desktop.ui.qt import QtCore, Signal
from expirytrack_desktop.ui.services import Services

log = logging.getLogger(__name__)


class Controller(QtCore.QObject):
    authChanged = Signal()
    loginNeeded = Signal(str)
    databaseChanged = Signal()
    exportsChanged = Signal()
    jobLogChanged = Signal(int)
    jobFinished = Signal(int, str)

    def __init__(self, services: Services, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.jobs_model = JobsModel(self)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._anon: set[asyncio.Task[Any]] = set()

    # --- tasks -----------------------------------------------------------------------------
    def schedule(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a strong reference; log its failure."""
        if name is not None:
            old = self._tasks.get(name)
            if old is not None and not old.done():
                old.cancel()
        task = asyncio.ensure_future(coro)
        if name is not None:
            self._tasks[name] = task
        self._anon.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._anon.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("Background task failed: %s", exc, exc_info=exc)

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def aclose(self) -> None:
        """Stop background work and close clients (called before the loop ends)."""
        tasks = [t for t in self._anon if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # --- auth --------------------------------------------------------------------------------
    def logged_in(self) -> bool:
        return False

    def auth_summary(self) -> str:
        if self.services.demo:
            return "Demo user"
        return "Not logged in"

    def logout(self) -> None:
        self.authChanged.emit()

    # --- rate limits ---------------------------------------------------------------------------
    def rate_usage(self) -> list[tuple[float, int, int]]:
        return []

    def rate_summary(self) -> str:
        usage = self.rate_usage()
        if not usage:
            return "API: idle"
        parts = [f"{used}/{limit} per {_span(sec)}" for sec, used, limit in usage]
        return "API budget: " + ", ".join(parts)

    def rate_tooltip(self) -> str:
        return (
            "Requests sent in each sliding window against its limit "
            f"({self.services.settings.resolved_rate_limit(self.services.options.rate_limit)})."
        )

    def usage_text(self) -> str:
        return self.rate_summary()

    # --- jobs ----------------------------------------------------------------------------------
    def is_running(self, job_id: int) -> bool:
        return False

    async def reload_jobs(self) -> None:
        rows = await self.run_blocking(dbread.read_jobs, self.services.db_path)
        self.jobs_model.set_rows([job_row_from_record(r) for r in rows])

    async def job_log(self, job_id: int) -> list[str]:
        return await self.run_blocking(dbread.read_job_log, self.services.db_path, job_id)

    async def cancel_job(self, job_id: int) -> None:
        pass

    async def pause_job(self, job_id: int) -> None:
        pass

    async def resume_job(self, job_id: int) -> None:
        pass

    async def retry_job(self, job_id: int) -> None:
        pass

    # --- dashboard -----------------------------------------------------------------------------
    async def database_stats(self) -> dict[str, int]:
        return await self.run_blocking(dbread.read_counts, self.services.db_path)

    async def coverage_cells(self) -> dict[tuple[str, str], CoverageCell]:
        return {}

    async def export_history(self) -> list[dict[str, Any]]:
        return await self.run_blocking(dbread.read_export_history, self.services.db_path)


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}min"
    return f"{seconds / 3600:g}h"


def job_row_from_record(r: dict[str, Any]) -> JobRow:
    return JobRow(
        id=int(r["id"]),
        underlyings=r.get("underlyings") or "",
        expiries=r.get("expiries") or "",
        status=r.get("status") or "",
        total=int(r.get("total_items") or 0),
        done=int(r.get("done_items") or 0),
        failed=int(r.get("failed_items") or 0),
        requests=int(r.get("requests") or 0),
        candles=int(r.get("candles") or 0),
        started_at=r.get("started_at"),
        completed_at=r.get("completed_at"),
        error=r.get("error_message"),
    )
