"""The app's main coroutine: build services, controller and window; run until quit."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.ui.controller import Controller
from expirytrack_desktop.ui.dialogs import run_dialog
from expirytrack_desktop.ui.gui_gc import collect_on_gui_thread
from expirytrack_desktop.ui.mainwindow import MainWindow
from expirytrack_desktop.ui.qt import QtWidgets
from expirytrack_desktop.ui.screenshots import take_screenshot
from expirytrack_desktop.ui.services import LaunchOptions, Services

log = logging.getLogger(__name__)


async def first_run_choice(window: QtWidgets.QWidget) -> str:
    """No credentials yet: offer the demo market, the settings, or nothing."""
    box = QtWidgets.QMessageBox(window)
    box.setIcon(QtWidgets.QMessageBox.Icon.Question)
    box.setWindowTitle("Welcome to ExpiryTrack")
    box.setText("No Upstox credentials are configured yet.")
    box.setInformativeText(
        "Try the app against the built-in demo market (simulated data, separate database), "
        "or enter your Upstox API key and secret now."
    )
    demo = box.addButton("Try the &demo", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
    settings = box.addButton("Enter &credentials…", QtWidgets.QMessageBox.ButtonRole.ActionRole)
    box.addButton("&Later", QtWidgets.QMessageBox.ButtonRole.RejectRole)
    await run_dialog(box)
    clicked = box.clickedButton()
    box.deleteLater()
    if clicked is demo:
        return "demo"
    if clicked is settings:
        return "settings"
    return "later"


async def run_app(app: QtWidgets.QApplication, args: argparse.Namespace, paths: AppPaths) -> int:
    options = LaunchOptions(
        demo=bool(args.demo), db=args.db, api_base=args.api_base, rate_limit=args.rate_limit
    )
    # widgets in reference cycles must be destroyed on this thread (ui/gui_gc.py)
    with collect_on_gui_thread():
        while True:
            services = Services.create(paths, options)
            controller = Controller(services)
            controller.host.prepare()  # the database and client open while the window is built
            window = MainWindow(controller)
            restart_demo = False
            try:
                window.show()
                await controller.start()
                if args.smoke_test:
                    await asyncio.sleep(0.05)  # let the first paint and queued tasks run
                    ok = window.isVisible() and controller.runtime is not None
                    log.info("smoke test: window shown=%s", ok)
                    return 0 if ok else 1
                if args.screenshot:
                    return await take_screenshot(window, args.page, Path(args.screenshot))
                if not options.demo and not await controller.auth.has_credentials():
                    choice = await first_run_choice(window)
                    if choice == "demo":
                        options = LaunchOptions(demo=True, db=None, rate_limit=args.rate_limit)
                        restart_demo = True
                    elif choice == "settings":
                        window.on_settings()
                if not restart_demo:
                    await window.quit_event.wait()
                    return 0
            finally:
                window.close_now()
                await controller.aclose()
                window.deleteLater()
