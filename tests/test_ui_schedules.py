"""The Schedules page: create, edit, bad input, run now, remove, and the log-in-before-it warning —
driven by clicks, with the OS scheduler behind a fake command runner (nothing installed)."""

from __future__ import annotations

import pytest

from expirytrack_desktop.schedule import ScheduleStore, hooks
from expirytrack_desktop.schedule.ossched import SchedulerPaths
from expirytrack_desktop.ui import schedules_page
from expirytrack_desktop.ui.qt import Qt, QtWidgets
from tests.test_schedule_os import FakeRunner
from tests.test_ui_support import close_app, make_window, small_simulator

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
PY = "/opt/ExpiryTrack/python3"


@pytest.fixture
def page(qtbot, qloop, tmp_path):
    runner = FakeRunner()
    spaths = SchedulerPaths(tmp_path / "systemd", tmp_path / "agents", tmp_path / "tasks",
                            tmp_path / "logs")  # fmt: skip
    window, controller = make_window(tmp_path, small_simulator())
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    with hooks.override(runner=runner, paths=spaths, platform="linux", executable=PY, frozen=False):
        window.tabs.setCurrentWidget(window.schedules_page)
        yield window.schedules_page, runner, controller
    close_app(qtbot, qloop, window, controller)


def fill(dialog, **fields: str) -> None:
    for name, value in fields.items():
        getattr(dialog, name).setText(value)


def save(qtbot, dialog) -> None:
    buttons = dialog.findChild(QtWidgets.QDialogButtonBox)
    qtbot.mouseClick(buttons.button(buttons.StandardButton.Save), Qt.MouseButton.LeftButton)


def test_create_edit_and_bad_input(qtbot, page):
    page, runner, controller = page
    assert "No scheduled collections" in page.note.text()
    assert not page.btn_run.isEnabled()
    qtbot.mouseClick(page.btn_new, Qt.MouseButton.LeftButton)
    dialog = page.dialog
    fill(dialog, name="nightly", instruments="NIFTY", times="25:00")
    save(qtbot, dialog)
    assert dialog.isVisible() and "25:00" in dialog.error.text()  # stays open, says why
    store = ScheduleStore(controller.services.paths.config_dir / "schedules.json")
    assert store.load() == []  # nothing stored
    fill(dialog, times="16:30, 09:05")
    save(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    [s] = store.load()
    assert (s.name, s.instruments, s.times, s.days) == ("nightly", ["NIFTY"], ["09:05", "16:30"],
                                                        [0, 1, 2, 3, 4])  # fmt: skip
    assert s.backend == "systemd"
    assert ["systemctl", "--user", "enable", "expirytrack-nightly.timer"] in runner.calls
    assert page.model.rowCount() == 1
    assert page.model.data(page.model.index(0, 4)) == "systemd"
    assert page.model.data(page.model.index(0, 5)) == "never run"
    # edit: the name stays, the rest changes
    page.table.selectRow(0)
    qtbot.mouseClick(page.btn_edit, Qt.MouseButton.LeftButton)
    dialog = page.dialog
    assert dialog.name.isReadOnly() and dialog.times.text() == "09:05, 16:30"
    fill(dialog, times="18:00")
    dialog.days[5].setChecked(True)
    save(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    [s] = store.load()
    assert s.times == ["18:00"] and 5 in s.days


def test_next_run_after_the_token_expiry_asks_to_log_in(qtbot, page):
    page, _runner, _controller = page
    from datetime import datetime, timedelta

    assert page.controller.auth.token_expiry() is not None  # the demo is logged in: <= 24 h
    qtbot.mouseClick(page.btn_new, Qt.MouseButton.LeftButton)
    fill(page.dialog, name="late", instruments="NIFTY", times="16:30")
    in_two_days = (datetime.now() + timedelta(days=2)).weekday()  # after the next 03:30 IST
    for i, box in enumerate(page.dialog.days):
        box.setChecked(i == in_two_days)
    with qtbot.waitSignal(page.needsLogin, timeout=5000) as blocker:
        save(qtbot, page.dialog)
        page.refresh()
    assert "log in before it" in blocker.args[0] and "late" in blocker.args[0]
    assert page.model.data(page.model.index(0, 3)).endswith("(log in before it)")
    assert "log in before it" in page.window().statusBar().currentMessage()


def test_run_now_and_remove(qtbot, page, monkeypatch):
    page, runner, controller = page
    started = []

    class FakeProcess:
        def __init__(self, argv, **_kw):
            started.append(argv)

        def poll(self):
            return 0

    monkeypatch.setattr(schedules_page.subprocess, "Popen", FakeProcess)
    qtbot.mouseClick(page.btn_new, Qt.MouseButton.LeftButton)
    fill(page.dialog, name="once", instruments="NIFTY", times="16:30")
    save(qtbot, page.dialog)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=3000)
    page.table.selectRow(0)
    qtbot.mouseClick(page.btn_run, Qt.MouseButton.LeftButton)
    assert started == [[PY, "-m", "expirytrack_desktop", "schedule", "run", "once"]]
    monkeypatch.setattr(
        QtWidgets.QMessageBox, "question", lambda *a, **k: QtWidgets.QMessageBox.StandardButton.Yes
    )
    qtbot.mouseClick(page.btn_remove, Qt.MouseButton.LeftButton)
    assert page.model.rowCount() == 0
    assert ["systemctl", "--user", "disable", "--now", "expirytrack-once.timer"] in runner.calls
    store = ScheduleStore(controller.services.paths.config_dir / "schedules.json")
    assert store.load() == []


def test_exports_after_each_run_and_what_the_dialog_does_not_show_is_kept(qtbot, page, tmp_path):
    """The dialog sets a schedule's export preset and mirror folder; editing keeps what it does
    not show (a CLI-made schedule's retries, e-mail policy, ...) instead of dropping it."""
    from expirytrack_desktop.export.api import ExportOptions
    from expirytrack_desktop.export.presets import Preset, presets_path, save_preset
    from expirytrack_desktop.schedule import Schedule

    page, _runner, controller = page
    config = controller.services.paths.config_dir
    save_preset(presets_path(config), Preset("weekly", ExportOptions(("NSE_INDEX|Nifty 50",))))
    page.manager.add(
        Schedule("cli-made", ["NIFTY"], ["16:30"], retries=7, notify_on="failure",
                 export_mirror=str(tmp_path / "mirror")),
        install_it=False,
    )  # fmt: skip
    page.refresh()
    assert page.model.data(page.model.index(0, 1)).endswith(f"then mirror {tmp_path / 'mirror'}")
    page.table.selectRow(0)
    qtbot.mouseClick(page.btn_edit, Qt.MouseButton.LeftButton)
    dialog = page.dialog
    assert dialog.mirror.text() == str(tmp_path / "mirror")
    assert [dialog.export_preset.itemText(i) for i in range(dialog.export_preset.count())] == [
        "none", "weekly"
    ]  # fmt: skip
    (tmp_path / "a-file").write_text("")
    fill(dialog, mirror=str(tmp_path / "a-file"), times="17:00")
    save(qtbot, dialog)
    assert dialog.isVisible() and "exists and is not a folder" in dialog.error.text()
    fill(dialog, mirror="")
    assert not dialog.export_new.isEnabled()  # "only what is new": of a preset
    dialog.export_preset.setCurrentIndex(1)
    assert dialog.export_new.isEnabled()
    dialog.export_new.setChecked(True)
    save(qtbot, dialog)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    store = ScheduleStore(config / "schedules.json")
    [s] = store.load()
    assert (s.times, s.export_preset, s.export_mirror) == (["17:00"], "weekly", None)
    assert s.export_new
    assert (s.retries, s.notify_on) == (7, "failure")  # kept, though the dialog has no field
    assert page.model.data(page.model.index(0, 1)).endswith(
        "then export preset 'weekly' (only what is new)"
    )


def test_the_dialog_screenshot(qtbot, page, tmp_path):
    """`--screenshot --page schedule-dialog` (docs/screenshots): the filled-in New… dialog."""
    from expirytrack_desktop.ui.qt import QtGui
    from expirytrack_desktop.ui.screenshots import _schedule_dialog

    page, _runner, _controller = page
    out = tmp_path / "dialog.png"
    assert _schedule_dialog(page.window(), out) == 0
    image = QtGui.QImage(str(out))
    assert image.width() > 300 and image.height() > 200
    assert not page.dialog.isVisible()  # closed again, nothing saved
