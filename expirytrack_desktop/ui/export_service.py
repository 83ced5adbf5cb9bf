"""Exports for the window: what can be exported, a preview, the export itself, the history.

The export engine is blocking (SQLite reads, file writing), so it runs in worker threads:
queries on the task manager's pool, the export on its own single thread. The export engine
is imported by the first call that needs it (the history alone at start-up).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.services import Services
from expirytrack_desktop.ui.tasks import TaskManager

if TYPE_CHECKING:
    from expirytrack_desktop.export.api import (
        ExpiryInfo,
        ExportHistoryEntry,
        ExportOptions,
        ExportPreview,
        ExportProgress,
        ExportResult,
        UnderlyingInfo,
    )

log = logging.getLogger(__name__)


class ExportService:
    def __init__(self, services: Services, host: EngineHost, tasks: TaskManager) -> None:
        self.services = services
        self.host = host
        self.tasks = tasks
        self._pool: ThreadPoolExecutor | None = None

    def _db(self) -> str:
        return str(self.services.db_path)

    async def underlyings(self) -> list[UnderlyingInfo]:
        from expirytrack_desktop.export.api import available_underlyings

        await self.host.ready()
        return await self.tasks.run_blocking(available_underlyings, self._db())

    async def expiries(self, keys: list[str]) -> list[ExpiryInfo]:
        from expirytrack_desktop.export.api import available_expiries

        await self.host.ready()
        db = self._db()

        def read() -> list[ExpiryInfo]:
            return available_expiries(db, keys, with_candle_counts=True)

        return await self.tasks.run_blocking(read)

    async def preview(self, options: ExportOptions) -> ExportPreview:
        from expirytrack_desktop.export.api import preview

        return await self.tasks.run_blocking(preview, self._db(), options)

    async def run(
        self,
        options: ExportOptions,
        out_path: str | Path,
        *,
        overwrite: bool = False,
        progress: Callable[[ExportProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ExportResult:
        """The export engine in a worker thread (it is blocking); returns its result."""
        from expirytrack_desktop.export.api import run_export

        db = self._db()

        def work() -> ExportResult:
            return run_export(
                db, options, out_path, overwrite=overwrite, progress=progress, cancel=cancel
            )

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="expirytrack-export")
        result = await asyncio.get_running_loop().run_in_executor(self._pool, work)
        log.info("Exported %s rows to %s", f"{result.rows:,}", result.path)
        return result

    async def history(self) -> list[ExportHistoryEntry]:
        """The export engine's history (what, when, where, rows, size), newest first."""
        if not self.services.db_path.exists():
            return []

        def read(db: str) -> list[ExportHistoryEntry]:
            from expirytrack_desktop.export.history import list_export_history

            return list_export_history(db)

        return await self.tasks.run_blocking(read, self._db())

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
