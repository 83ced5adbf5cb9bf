"""Desktop entry point: ``expirytrack-desktop`` / ``python -m expirytrack_desktop``.

asyncio runs inside Qt's event loop (qasync). The main coroutine shows the window and waits
for a "quit requested" event, then closes the engine's clients before the loop ends, because
qasync drains Qt events after the loop stops and async cleanup would fail there.
Heavy modules (pandas, pyarrow, the simulator) are imported lazily by the pages that use them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import sys
import traceback
from collections.abc import Sequence
from logging.handlers import RotatingFileHandler
from pathlib import Path

from expirytrack_desktop import APP_NAME, __version__
from expirytrack_desktop.paths import AppPaths

log = logging.getLogger("expirytrack_desktop.app")

PAGES = (
    "main",
    "wizard-1",
    "wizard-2",
    "wizard-3",
    "wizard-4",
    "wizard-search",
    "jobs",
    "dashboard",
    "atrisk",
    "export-1",
    "export-2",
    "export-3",
    "export-4",
    "schedule-dialog",
    "export-5",
    "settings",
    "settings-cloud",
    "chart",
    "chain",
    "quality",
    "schedules",
    "waiting",
    "quit",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="expirytrack-desktop",
        description="ExpiryTrack: collect and export historical candles of expired Indian F&O "
        "contracts from Upstox.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--demo", action="store_true", help="run against the built-in demo market")
    p.add_argument("--db", metavar="PATH", help="SQLite database file")
    p.add_argument("--api-base", metavar="URL", help="Upstox API base URL")
    p.add_argument("--rate-limit", metavar="SPEC", help='e.g. "50/1,500/60,2000/1800"')
    p.add_argument(
        "--smoke-test", action="store_true", help="start, show the main window, quit with 0"
    )
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window, then quit")
    p.add_argument("--page", choices=PAGES, default="main", help="what --screenshot shows")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _install_excepthook() -> None:
    """Exceptions in Qt slots and async slots land here: log them, keep the app alive."""

    def hook(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error(
            "Unhandled error: %s", "".join(traceback.format_exception(exc_type, exc, tb)).strip()
        )

    sys.excepthook = hook


def _setup_logging(verbose: bool, log_dir: Path | None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:  # one line per HTTP request would drown the log panel
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            fh = RotatingFileHandler(
                log_dir / "expirytrack-desktop.log",
                maxBytes=2_000_000,
                backupCount=3,
                encoding="utf-8",
            )
            fh.setLevel(logging.INFO)
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(fh)
        except OSError:
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop app; returns the process exit status."""
    multiprocessing.freeze_support()  # a frozen build re-enters here to start the engine process
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("QT_API", "pyside6")
    if (
        (args.smoke_test or args.screenshot)
        and not os.environ.get("QT_QPA_PLATFORM")
        and (
            sys.platform.startswith("linux")
            and not os.environ.get("DISPLAY")
            and not (os.environ.get("WAYLAND_DISPLAY"))
        )
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    # httpx imports its command-line client (click, pygments, rich: 60+ ms here) whenever those
    # happen to be installed; the window never uses it. A None entry makes that optional
    # import fail at once, as where they are not installed (httpx then keeps a stub `main`).
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

    paths = AppPaths.default()
    _setup_logging(args.verbose, None if (args.smoke_test or args.screenshot) else paths.log_dir)
    _install_excepthook()

    # Qt is imported only now, on purpose: QT_QPA_PLATFORM and QT_API above must be set
    # before the first Qt import, and the engine process never needs Qt at all.
    from expirytrack_desktop.ui.qt import QtGui, QtWidgets, qasync

    existing = QtWidgets.QApplication.instance()
    app = (
        existing
        if isinstance(existing, QtWidgets.QApplication)
        else QtWidgets.QApplication([sys.argv[0] or APP_NAME])
    )
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("expirytrack-desktop")
    app.setQuitOnLastWindowClosed(False)
    scheme = os.environ.get("EXPIRYTRACK_COLOR_SCHEME", "").lower()  # dark | light | (system)
    if scheme in ("dark", "light"):
        from expirytrack_desktop.ui.palette import apply_color_scheme

        apply_color_scheme(app, scheme)

    from expirytrack_desktop.ui.resources import ICON_PNG, ICON_SVG, resource_path

    icon_file = resource_path(ICON_PNG) or resource_path(ICON_SVG)
    if icon_file is not None:
        app.setWindowIcon(QtGui.QIcon(str(icon_file)))

    from expirytrack_desktop.ui.launcher import run_app

    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run(run_app(app, args, paths))


if __name__ == "__main__":
    sys.exit(main())
