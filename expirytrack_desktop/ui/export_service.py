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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
T = TypeVar("T")


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
            result = run_export(
                db, options, out_path, overwrite=overwrite, progress=progress, cancel=cancel
            )
            self._clean_after(db, Path(result.path))
            return result

        result = await self._in_export_thread(work)
        log.info("Exported %s rows to %s", f"{result.rows:,}", result.path)
        return result

    def _clean_after(self, db: str, written: Path | None) -> None:
        """The settings' automatic clean-up of old exports (never the one just written); what
        it removed goes to the log panel."""
        from expirytrack_desktop.export.cleanup import clean_after_export

        s = self.services.settings

        def say(line: str) -> None:
            (log.warning if line.startswith("warning") else log.info)("%s", line)

        clean_after_export(db, s.export_keep_days, s.export_keep_mb, written, say)

    async def _in_export_thread(self, work: Callable[[], T]) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="expirytrack-export")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def run_s3(
        self,
        options: ExportOptions,
        url: str,
        name: str,
        *,
        overwrite: bool = False,
        progress: Callable[[ExportProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[ExportResult, str, int]:
        """Export into a private temporary folder, upload it to ``url`` (``s3://…``), record
        it in the history; (result, the object's URL, files uploaded)."""
        from expirytrack_desktop.export.api import run_export
        from expirytrack_desktop.export.history import record_export
        from expirytrack_desktop.export.s3 import configured_s3, export_to_s3

        db = self._db()

        def work() -> tuple[ExportResult, str, int]:
            rt = self.host.runtime  # the keyring may block: read here, not in the loop
            filesystem = configured_s3(
                lambda: rt.secrets if rt is not None else None,
                self.services.settings,
                lambda w: log.warning("%s", w),
            )
            result, where, count = export_to_s3(
                url,
                name,
                lambda local: run_export(
                    db, options, local, progress=progress, cancel=cancel, record_history=False
                ),
                filesystem,
                overwrite=overwrite,
            )
            record_export(db, options, where, result.rows, result.bytes, datetime.now(UTC))
            self._clean_after(db, None)
            return result, where, count

        out = await self._in_export_thread(work)
        log.info("Exported %s rows to %s", f"{out[0].rows:,}", out[1])
        return out

    async def mirror(
        self,
        options: ExportOptions,
        folder: Path,
        *,
        progress: Callable[[ExportProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Any:
        """Bring the Parquet mirror at ``folder`` in step (export.mirror.MirrorResult)."""
        from expirytrack_desktop.export.mirror import update_mirror

        db = self._db()
        return await self._in_export_thread(
            lambda: update_mirror(db, options, folder, progress=progress, cancel=cancel)
        )

    async def clean(
        self, older_than_days: float | None, max_total_bytes: int | None, *, dry_run: bool
    ) -> Any:
        """Old exports removed (or, ``dry_run``, listed): export.cleanup.CleanupResult."""
        from expirytrack_desktop.export.cleanup import clean_exports

        db = self._db()
        return await self.tasks.run_blocking(
            lambda: clean_exports(
                db,
                older_than_days=older_than_days,
                max_total_bytes=max_total_bytes,
                dry_run=dry_run,
            )
        )

    async def history(self) -> list[ExportHistoryEntry]:
        """The export engine's history (what, when, where, rows, size), newest first."""
        if not self.services.db_path.exists():
            return []

        def read(db: str) -> list[ExportHistoryEntry]:
            from expirytrack_desktop.export.history import list_export_history

            return list_export_history(db)

        return await self.tasks.run_blocking(read, self._db())

    async def underlying_names(self, keys: list[str]) -> dict[str, str]:
        """``{instrument key: trading symbol}`` for naming past exports' underlyings (a
        stock by its symbol, not its ISIN key); {} when the database cannot say."""
        if not keys or not self.services.db_path.exists():
            return {}

        def read(db: str) -> dict[str, str]:
            import sqlite3
            from contextlib import closing

            from expirytrack_desktop.export.db import connect_readonly
            from expirytrack_desktop.export.errors import DatabaseError
            from expirytrack_desktop.store.underlyings import read_underlying_names

            try:
                with closing(connect_readonly(db)) as conn:
                    query = lambda sql, args: conn.execute(sql, args).fetchall()  # noqa: E731
                    return read_underlying_names(query, keys)
            except (DatabaseError, sqlite3.Error):  # an older or damaged file: keys it is
                return {}

        return await self.tasks.run_blocking(read, self._db())

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
