"""First start without credentials: the welcome box offers the demo market, settings, or later."""

from __future__ import annotations

import asyncio

import pytest

from expirytrack_desktop.ui.launcher import first_run_choice
from expirytrack_desktop.ui.qt import QtWidgets

# the offscreen platform's one warning for any dialog; every other Qt warning still fails
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def _welcome_box(parent: QtWidgets.QWidget) -> QtWidgets.QMessageBox | None:
    boxes = [b for b in parent.findChildren(QtWidgets.QMessageBox) if b.isVisible()]
    return boxes[0] if boxes else None


@pytest.mark.parametrize(
    ("button_text", "expected"),
    [("Try the &demo", "demo"), ("Enter &credentials…", "settings"), ("&Later", "later")],
)
def test_first_run_choice_returns_what_the_user_clicked(qtbot, qloop, button_text, expected):
    window = QtWidgets.QWidget()
    qtbot.addWidget(window)
    window.show()
    task = asyncio.ensure_future(first_run_choice(window))
    qtbot.waitUntil(lambda: _welcome_box(window) is not None, timeout=5000)
    box = _welcome_box(window)
    assert box is not None
    assert "No Upstox credentials" in box.text()
    [button] = [b for b in box.buttons() if b.text() == button_text]
    button.click()
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.result() == expected


def test_the_app_runs_with_cycles_collected_on_the_gui_thread(qtbot, qloop, qapp, monkeypatch):
    """run_app (the window's whole life, here its smoke test) runs under ui/gui_gc.py's
    collector, with Python's own collector off, and gives it back on return."""
    import contextlib
    import gc

    from expirytrack_desktop.app import build_parser
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.ui import launcher

    real = launcher.collect_on_gui_thread
    seen: list[bool] = []

    @contextlib.contextmanager
    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        with real(*args, **kwargs) as collector:
            seen.append(collector.running and not gc.isenabled())
            yield collector

    monkeypatch.setattr(launcher, "collect_on_gui_thread", spy)
    args = build_parser().parse_args(["--smoke-test", "--demo"])
    task = asyncio.ensure_future(launcher.run_app(qapp, args, AppPaths.default()))
    qtbot.waitUntil(task.done, timeout=60000)
    assert task.result() == 0 and seen == [True]
    assert not gc.isenabled()  # still off: the test's own collector (conftest) runs until teardown
