"""The window's rough edges found walking through it as a new user, each driven by clicks and
keys, offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest
from PySide6 import QtCore, QtWidgets

from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from tests.test_ui_collect import click, run_wizard, status
from tests.test_ui_support import close_app, make_window, small_simulator

Qt = QtCore.Qt
WB = QtWidgets.QWizard.WizardButton
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


@pytest.fixture
def app_window(qtbot, qloop, tmp_path):
    sim = small_simulator()
    window, controller = make_window(tmp_path, sim)
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    yield window, controller, sim
    close_app(qtbot, qloop, window, controller)


def start_job(qtbot, window, *, limit: str | None = None) -> int:
    wiz, _ = run_wizard(qtbot, window)
    if limit is not None:  # a tight budget, so the limiter soon holds requests back
        limiter = RateLimiter(RateLimitSpec.parse(limit))  # its own budget, fresh
        window.controller.runtime.client.limiter = limiter
    with qtbot.waitSignal(wiz.jobStarted, timeout=10000) as started:
        click(qtbot, wiz.button(WB.FinishButton))
    return started.args[0]


# --- 11: waiting for API budget -------------------------------------------------------------
def test_a_job_held_back_by_the_limiter_says_until_when(qtbot, app_window):
    window, controller, _ = app_window
    job_id = start_job(qtbot, window, limit="3/30")
    model = controller.jobs_model
    qtbot.waitUntil(window.lbl_wait.isVisible, timeout=20000)
    assert window.lbl_wait.text().startswith("⏳ Waiting for API budget until ")
    row = model.row_of(job_id)
    qtbot.waitUntil(lambda: "waiting for API budget until" in model.index(row, 3).data())
    until = controller.jobs_model.budget_until
    assert until is not None
    hhmmss = QtCore.QDateTime.fromSecsSinceEpoch(int(until)).toString("HH:mm:ss")
    assert hhmmss in model.index(row, 3).data() and hhmmss in window.lbl_wait.text()
    # the ETA is never shorter than the wait (the rate the engine saw froze meanwhile)
    eta = model.index(row, 8).data()
    assert eta.endswith("s") and eta != "0s"
    wait_left = until - controller.jobs_model.clock()
    minutes, _, seconds = eta.partition("m ")
    eta_s = int(minutes) * 60 + int(seconds[:-1]) if seconds else int(minutes[:-1])
    assert eta_s >= int(wait_left) - 1
    # cancelling ends the wait, and the window stops saying it
    window.jobs_page.select_job(job_id)
    click(qtbot, window.jobs_page.btn_cancel)
    qtbot.waitUntil(lambda: status(model, job_id) == "cancelled", timeout=20000)
    qtbot.waitUntil(lambda: not window.lbl_wait.isVisible(), timeout=5000)


# --- 15: step 1 of the wizard -----------------------------------------------------------------
def mnemonics(widget: QtWidgets.QWidget) -> list[str]:
    keys = []
    for b in widget.findChildren(QtWidgets.QAbstractButton):
        if b.isVisible() and "&" in b.text().replace("&&", ""):
            keys.append(b.text().replace("&&", "").split("&", 1)[1][0].lower())
    return keys


def test_step_one_adds_a_key_with_enter_or_add_and_next_follows(qtbot, app_window):
    window, _controller, _ = app_window
    window.act_new.trigger()
    wiz = window.collect_wizard
    qtbot.waitExposed(wiz)
    page = wiz.underlyings_page
    click(qtbot, page.btn_none)
    assert not wiz.button(WB.NextButton).isEnabled()
    qtbot.keyClicks(page.key_edit, "NSE_EQ|INE002A01018")
    click(qtbot, page.btn_add)
    assert "NSE_EQ|INE002A01018" in [k for _, k in page.selected()]
    assert wiz.button(WB.NextButton).isEnabled()  # at once, no other box toggled
    click(qtbot, page.btn_none)
    # Enter in the key field adds, and stays on this page
    qtbot.keyClicks(page.key_edit, "NSE_EQ|INE467B01029")
    qtbot.keyClick(page.key_edit, Qt.Key.Key_Return)
    assert wiz.currentPage() is page
    assert [k for _, k in page.selected()] == ["NSE_EQ|INE467B01029"]
    assert wiz.button(WB.NextButton).isEnabled() and page.key_edit.text() == ""
    # every visible button of the page and the wizard has its own Alt key
    keys = mnemonics(wiz)
    assert len(keys) == len(set(keys)), keys
    wiz.reject()


# --- 17: keyboard and wording -------------------------------------------------------------------
def test_tab_leaves_the_jobs_table_and_focus_is_visible(qtbot, app_window):
    window, controller, _ = app_window
    job_id = start_job(qtbot, window)
    qtbot.waitUntil(lambda: status(controller.jobs_model, job_id) == "completed", timeout=30000)
    table = window.jobs_page.table
    window.activateWindow()
    table.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(table.hasFocus, timeout=5000)
    focused = table.grab().toImage()
    table.selectRow(0)
    qtbot.keyClick(table, Qt.Key.Key_Tab)
    assert not table.hasFocus() and window.focusWidget() is not table
    unfocused = table.grab().toImage()
    assert focused != unfocused  # the focus frame is drawn only while the table has focus


def test_rate_limits_are_worded_where_they_are_shown(qtbot, app_window):
    window, controller, _ = app_window
    controller.services.options.rate_limit = None  # the settings' limits, not the test's
    controller.services.settings.rate_limit = "50/1,500/60,2000/1800"
    window.refresh_status()
    assert "50 per second · 500 per minute · 2,000 per 30 minutes" in window.lbl_rate.toolTip()
    window.act_new.trigger()
    wiz = window.collect_wizard
    hints = [w.text() for w in wiz.options_page.findChildren(QtWidgets.QLabel)]
    assert any("50 per second · 500 per minute · 2,000 per 30 minutes" in t for t in hints)
    wiz.reject()


# --- 18: demo login, and a second window on the same database ------------------------------
def test_demo_login_asks_no_passphrase_and_names_the_user_one_way(qtbot, qloop, tmp_path):
    import keyring.backends.fail

    from expirytrack_desktop.ui.dialogs import PassphraseDialog

    window, controller = make_window(
        tmp_path, small_simulator(), keyring_backend=keyring.backends.fail.Keyring()
    )
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    assert controller.runtime.secrets.is_fallback  # no OS keyring, as on a headless Linux
    window.refresh_status()
    assert window.lbl_user.text() == "Demo Trader (DEMO01), simulated login"
    window.act_logout.trigger()
    qtbot.waitUntil(lambda: not controller.auth.logged_in(), timeout=10000)
    window.act_login.trigger()
    dlg = window.login_dialog
    with qtbot.waitSignal(dlg.accepted, timeout=20000):
        qtbot.mouseClick(dlg.btn_start, Qt.MouseButton.LeftButton)
    assert controller.auth.passphrase_dialog is None
    assert not window.findChildren(PassphraseDialog)
    window.refresh_status()
    assert window.lbl_user.text().startswith("Demo Trader (DEMO01), token valid until")
    close_app(qtbot, qloop, window, controller)


def test_the_passphrase_dialog_says_why_once(qtbot):
    from expirytrack_desktop.ui.dialogs import PassphraseDialog

    dlg = PassphraseDialog(True, "no usable OS keyring (fail Keyring)")
    qtbot.addWidget(dlg)
    texts = [w.text() for w in dlg.findChildren(QtWidgets.QLabel)]
    intro = next(t for t in texts if "encrypted" in t)
    assert intro.startswith("No usable OS keyring (fail Keyring), so ExpiryTrack keeps")
    assert intro.lower().count("no usable os keyring") == 1


def test_a_second_window_on_the_same_database_says_so(qtbot, qloop, tmp_path):
    sim = small_simulator()
    first, c1 = make_window(tmp_path, sim)
    second, c2 = make_window(tmp_path, sim)
    assert c1.services.db_path == c2.services.db_path
    for c in (c1, c2):
        task = c.schedule(c.start())
        qtbot.waitUntil(task.done, timeout=20000)
    first.show()
    second.show()
    first.refresh_status()
    second.refresh_status()
    assert not first.lbl_shared.isVisible()
    assert second.lbl_shared.isVisible()
    assert "Another ExpiryTrack window" in second.lbl_shared.text()
    # a job the first window runs cannot be resumed (run twice) from the second
    job_id = start_job(qtbot, first, limit="3/30")
    reload = c2.schedule(c2.jobs.reload())
    qtbot.waitUntil(reload.done, timeout=10000)
    assert status(c2.jobs_model, job_id) == "running"
    second.jobs_page.select_job(job_id)
    assert not second.jobs_page.btn_resume.isEnabled()
    assert not second.jobs_page.btn_cancel.isEnabled()
    close_app(qtbot, qloop, second, c2)
    close_app(qtbot, qloop, first, c1)
