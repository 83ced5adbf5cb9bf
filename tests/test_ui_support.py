"""Shared pieces of the UI tests (no tests here): a window on the in-process simulator."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from pathlib import Path
from typing import Any

from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.sandbox import Market, SimulatorApp
from expirytrack_desktop.ui.controller import Controller
from expirytrack_desktop.ui.mainwindow import MainWindow
from expirytrack_desktop.ui.runtime_adapter import build_runtime
from expirytrack_desktop.ui.services import LaunchOptions, Services

TEST_RATE = "2000/1"  # fast, but still through the real limiter
TODAY = date(2025, 11, 20)


def small_simulator() -> SimulatorApp:
    market = Market(seed=3, today=TODAY, underlyings=("NIFTY",), strikes_per_side=1)
    return SimulatorApp(market, rate_limit=None)


def make_window(
    tmp: Path,
    sim: SimulatorApp,
    *,
    demo: bool = True,
    rate: str = TEST_RATE,
    ledger: Path | None = None,
    **runtime: Any,
) -> tuple[MainWindow, Controller]:
    """``runtime``: more ``build_runtime`` arguments (``wrap_transport``, ``client_options``);
    ``ledger``: a rate-limit ledger file of its own (else the process's budget in memory)."""
    paths = AppPaths.under(tmp).ensure()
    services = Services.create(paths, LaunchOptions(demo=demo, rate_limit=rate))
    services.settings.history_months = 1

    def factory():  # type: ignore[no-untyped-def]
        return build_runtime(
            db_path=services.db_path,
            api_base="http://sandbox.local",
            rate_limit=rate,
            ledger_path=ledger,
            secrets_fallback=paths.secrets_fallback_path,
            demo=demo,
            concurrency=4,
            simulator=sim,
            **runtime,
        )

    controller = Controller(services, runtime_factory=factory)
    window = MainWindow(controller)
    return window, controller


def cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        if not task.done():
            task.cancel()


def close_app(qtbot, loop, window: MainWindow, controller: Controller) -> None:  # type: ignore[no-untyped-def]
    """Stop jobs and tasks, close clients and the database, before the widgets go."""
    for t in list(controller.tasks.pending()):
        t.cancel()
    done = asyncio.ensure_future(controller.aclose())
    qtbot.waitUntil(done.done, timeout=10000)
    with contextlib.suppress(RuntimeError):
        window.close()
        window.deleteLater()
    cancel_leftovers(loop)
    qtbot.wait(10)
