"""The window's one door to the engine: a hub of small services and the window's signals.

Pages never import the engine; they call a service of the controller:
``tasks`` (background tasks), ``host`` (the engine and its runtime), ``auth`` (login,
credentials, secrets), ``jobs`` (collection jobs), ``catalog`` (what the wizard offers),
``exports``, ``usage`` (figures for the dashboard and status bar) and ``analysis`` (what the
chart and chain pages read). Each lives in its own module; this one only builds them, wires
them together and starts and stops them in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from expirytrack_desktop.ui.analysis_service import AnalysisService
from expirytrack_desktop.ui.auth_service import AuthService
from expirytrack_desktop.ui.catalog import Catalog
from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.engine_protocol import EngineApi
from expirytrack_desktop.ui.export_service import ExportService
from expirytrack_desktop.ui.jobs_service import JobsService
from expirytrack_desktop.ui.models import JobsModel
from expirytrack_desktop.ui.qt import QtCore
from expirytrack_desktop.ui.runtime_adapter import UiRuntime
from expirytrack_desktop.ui.services import Services
from expirytrack_desktop.ui.signals import ControllerSignals
from expirytrack_desktop.ui.tasks import TaskManager
from expirytrack_desktop.ui.usage import Usage
from expirytrack_desktop.ui.window_lock import WindowLock

log = logging.getLogger(__name__)

T = TypeVar("T")


class Controller(ControllerSignals):
    def __init__(
        self,
        services: Services,
        parent: QtCore.QObject | None = None,
        *,
        runtime_factory: Callable[[], UiRuntime] | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.jobs_model = JobsModel(self)
        self.tasks = TaskManager()
        self.host = EngineHost(services, self.tasks, self, runtime_factory)
        self.jobs = JobsService(self.host, self.tasks, self, self.jobs_model)
        self.auth = AuthService(
            services, self.host, self.tasks, self, on_login=self.jobs.resume_after_login
        )
        self.catalog = Catalog(services, self.host)
        self.exports = ExportService(services, self.host, self.tasks)
        self.usage = Usage(services, self.host, self)
        self.window_lock = WindowLock(services.db_path)
        self.analysis = AnalysisService(services, self.host, self.jobs)

    def schedule(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> Any:
        """Run ``coro`` in the background (see :class:`TaskManager`); returns its task."""
        return self.tasks.schedule(coro, name)

    @property
    def runtime(self) -> UiRuntime | None:
        return self.host.runtime

    @property
    def api(self) -> EngineApi | None:
        return self.host.api

    async def start(self) -> None:
        """Open the engine, load the token, then show jobs, dashboard and exports."""
        if not await self.tasks.run_blocking(self.window_lock.acquire):
            log.warning(
                "Another ExpiryTrack window has %s open; each runs only its own jobs",
                self.services.db_path,
            )
        ok = await self.host.start(self.jobs.on_progress)
        if ok:
            await self.auth.load_token()
        self.host.set_ready()
        if not ok:
            return
        self.engineReady.emit()
        await self.jobs.reload()
        self.databaseChanged.emit()
        self.exportsChanged.emit()

    async def ready(self) -> UiRuntime:
        return await self.host.ready()

    async def aclose(self) -> None:
        """Stop background work, stop running jobs (resumable), close the engine."""
        await self.tasks.cancel_all()
        await self.jobs.stop_all()
        await self.host.aclose()
        self.window_lock.release()
        self.tasks.shutdown()
        self.exports.shutdown()
