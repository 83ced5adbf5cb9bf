"""The app's main coroutine: build services, controller and window; run until quit."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.ui.qt import QtWidgets

log = logging.getLogger(__name__)


async def run_app(app: QtWidgets.QApplication, args: argparse.Namespace, paths: AppPaths) -> int:
    from expirytrack_desktop.ui.controller import Controller
    from expirytrack_desktop.ui.mainwindow import MainWindow
    from expirytrack_desktop.ui.services import LaunchOptions, Services

    options = LaunchOptions(
        demo=bool(args.demo), db=args.db, api_base=args.api_base, rate_limit=args.rate_limit
    )
    services = Services.create(paths, options)
    controller = Controller(services)
    window = MainWindow(controller)
    try:
        window.show()
        if args.smoke_test:
            await asyncio.sleep(0.05)
            app.processEvents()
            ok = window.isVisible()
            log.info("smoke test: window shown=%s", ok)
            return 0 if ok else 1
        if args.screenshot:
            from expirytrack_desktop.ui.screenshots import take_screenshot

            return await take_screenshot(window, args.page, Path(args.screenshot))
        await window.quit_event.wait()
        return 0
    finally:
        if not window.quit_event.is_set():
            window.close()
        await controller.aclose()
