"""``--screenshot PATH --page NAME``: show a page of the app and save it as PNG via ``grab()``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.qt import QtWidgets

if TYPE_CHECKING:
    from expirytrack_desktop.ui.mainwindow import MainWindow

log = logging.getLogger(__name__)


async def settle(seconds: float = 0.3) -> None:
    """Let pending tasks and paints run (never processEvents() inside a coroutine)."""
    await asyncio.sleep(seconds)


async def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


def save(widget: QtWidgets.QWidget, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = widget.grab().save(str(path), "PNG")
    if not ok:
        log.error("could not save %s", path)
        return 1
    print(f"saved {path}")
    return 0


async def take_screenshot(window: MainWindow, page: str, path: Path) -> int:
    await settle(0.5)
    window.refresh_all()
    await settle(0.5)
    if page == "main":
        return save(window, path)
    if page == "dashboard":
        window.tabs.setCurrentWidget(window.dashboard_page)
        await window.dashboard_page.refresh()
        await settle()
        return save(window, path)
    log.error("page %s is not available yet", page)
    return 2
