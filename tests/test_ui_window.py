"""The window's rough edges found walking through it as a new user, each driven by clicks and
keys, offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

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
    assert window.lbl_wait.text().startswith("Waiting for API budget until ")
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
    # even asked directly (a click racing the first window's start), it is not run twice
    resume = c2.schedule(c2.jobs.resume(job_id))
    qtbot.waitUntil(resume.done, timeout=10000)
    assert resume.exception() is None and not c2.jobs.is_running(job_id)
    close_app(qtbot, qloop, second, c2)
    close_app(qtbot, qloop, first, c1)


# --- 13: quitting with jobs running ---------------------------------------------------------
def quit_with_keys(qtbot, window) -> None:
    assert window.act_quit.shortcut().matches(QtGui.QKeySequence("Ctrl+Q")) != (
        QtGui.QKeySequence.SequenceMatch.NoMatch
    )
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    if window.quit_box is None:  # no active window offscreen for the shortcut: same action
        window.act_quit.trigger()
    qtbot.waitUntil(lambda: window.quit_box is not None and window.quit_box.isVisible())


def test_quit_with_jobs_running_asks_and_stopped_jobs_come_back_interrupted(qtbot, qloop, tmp_path):
    sim = small_simulator()
    window, controller = make_window(tmp_path, sim)
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    job_id = start_job(qtbot, window, limit="3/30")
    assert controller.jobs.is_running(job_id)

    quit_with_keys(qtbot, window)
    box = window.quit_box
    assert "1 collection is still running" in box.text()
    click(qtbot, window.quit_buttons["cancel"])
    qtbot.waitUntil(lambda: window.quit_box is None)
    assert window.isVisible() and not window.quit_event.is_set()
    assert controller.jobs.is_running(job_id)

    quit_with_keys(qtbot, window)
    click(qtbot, window.quit_buttons["keep"])
    qtbot.waitUntil(window.isMinimized)
    assert not window.quit_event.is_set() and controller.jobs.is_running(job_id)
    window.showNormal()

    quit_with_keys(qtbot, window)
    click(qtbot, window.quit_buttons["stop"])
    qtbot.waitUntil(window.quit_event.is_set)
    closing = controller.schedule(controller.aclose())  # what the app does next
    qtbot.waitUntil(closing.done, timeout=30000)
    # the next start: the job is resumable, not cancelled, and carries no error
    window2, controller2 = make_window(tmp_path, sim)
    controller2.schedule(controller2.start(), name="start")
    qtbot.waitUntil(lambda: controller2.jobs_model.job(job_id) is not None, timeout=10000)
    row = controller2.jobs_model.job(job_id)
    assert row.status == "interrupted" and row.resumable and row.error is None
    assert controller2.jobs_model.index(controller2.jobs_model.row_of(job_id), 3).data() == (
        "interrupted (resumable)"
    )
    close_app(qtbot, qloop, window2, controller2)
    window.deleteLater()


# --- 12: stored expiries at once ----------------------------------------------------------------
def test_expiry_page_shows_stored_expiries_while_the_api_budget_is_used_up(qtbot, app_window):
    window, controller, _ = app_window
    key = "NSE_INDEX|Nifty 50"
    listed = controller.schedule(controller.catalog.list_expiries(key))  # stores them
    qtbot.waitUntil(listed.done, timeout=10000)
    known = sorted(c.expiry for c in listed.result())
    # the budget is used up: the next request waits about five seconds
    limiter = RateLimiter(RateLimitSpec.parse("1/5"))
    used = controller.schedule(limiter.acquire())
    qtbot.waitUntil(used.done, timeout=5000)
    used.result().release()
    controller.runtime.client.limiter = limiter

    window.act_new.trigger()
    wiz = window.collect_wizard
    qtbot.waitExposed(wiz)
    p1 = wiz.underlyings_page
    click(qtbot, p1.btn_none)
    for item in p1.items():
        if item.data(Qt.ItemDataRole.UserRole) == "NIFTY":
            item.setCheckState(Qt.CheckState.Checked)
    click(qtbot, wiz.button(WB.NextButton))
    p2 = wiz.expiries_page
    qtbot.waitUntil(lambda: bool(p2.expiry_items()), timeout=5000)
    assert p2.is_loading()  # the API's answer is still held back by the limiter
    items = p2.expiry_items()
    assert sorted(it.text(0) for _, it in items) == [d.isoformat() for d in known]
    assert {it.text(3) for _, it in items} == {"stored"}
    items[0][1].setCheckState(0, Qt.CheckState.Checked)
    assert wiz.button(WB.NextButton).isEnabled()  # no need to wait for the API
    # when the budget allows, the API's list replaces the stored one; the tick stays
    qtbot.waitUntil(lambda: not p2.is_loading(), timeout=20000)
    items = p2.expiry_items()
    assert {it.text(3) for _, it in items} == {"API"}
    assert sum(len(v) for v in p2.selection().values()) == 1
    wiz.reject()


# --- 14: a resumed job keeps its history -----------------------------------------------------
def test_resuming_a_cancelled_job_keeps_its_totals_and_start(qtbot, app_window):
    window, controller, _ = app_window
    wiz, _ = run_wizard(qtbot, window, expiries=2)
    controller.runtime.client.limiter = RateLimiter(RateLimitSpec.parse("1/1"))  # slow: 8 s
    with qtbot.waitSignal(wiz.jobStarted, timeout=10000) as started:
        click(qtbot, wiz.button(WB.FinishButton))
    job_id = started.args[0]
    page, model = window.jobs_page, controller.jobs_model
    qtbot.waitUntil(lambda: bool(model.job(job_id)) and model.job(job_id).done > 2, timeout=15000)
    page.select_job(job_id)
    click(qtbot, page.btn_cancel)
    qtbot.waitUntil(lambda: status(model, job_id) == "cancelled", timeout=10000)
    rt = controller.runtime
    read = controller.schedule(rt.db.run(rt.db.get_job, job_id))
    qtbot.waitUntil(read.done, timeout=5000)
    before = read.result()  # what the database keeps of the first run
    assert 0 < before.done_items < before.total_items
    assert before.requests > 0 and before.candles > 0
    started_at = before.started_at
    assert started_at is not None
    seen: list[tuple[int, int, int, int]] = []

    def watch(*_: object) -> None:
        row = model.job(job_id)
        if row is not None and row.status == "running":
            seen.append((row.done, row.total, row.requests, row.candles))

    model.dataChanged.connect(watch)
    controller.runtime.client.limiter = RateLimiter(RateLimitSpec.parse("2000/1"))
    page.select_job(job_id)
    click(qtbot, page.btn_resume)
    qtbot.waitUntil(lambda: status(model, job_id) == "completed", timeout=30000)
    model.dataChanged.disconnect(watch)
    after = model.job(job_id)
    # never back to 0/0 while it ran again, and the totals add up across both runs
    assert seen and all(
        d >= before.done_items and r >= before.requests and c >= before.candles
        for d, _, r, c in seen
    )
    assert after.done == after.total > before.done_items
    assert after.requests > before.requests and after.candles > before.candles
    assert after.started_at == started_at and after.completed_at is not None


# --- 16: one classification, the engine's requests counted, expiries known and collected ------
def test_cycle_labels_follow_the_apis_flag_like_the_command_line(qtbot, app_window):
    window, controller, _ = app_window
    job_id = start_job(qtbot, window)
    qtbot.waitUntil(lambda: status(controller.jobs_model, job_id) == "completed", timeout=30000)
    rt = controller.runtime
    key = "NSE_INDEX|Nifty 50"
    read = controller.schedule(rt.db.run(rt.db.known_expiries, key))
    qtbot.waitUntil(read.done, timeout=5000)
    # the command line's words for the stored flag (expirytrack status)
    cli = {
        d.isoformat(): "-" if w is None else ("weekly" if w else "monthly")
        for d, _, w in read.result()
    }
    assert "weekly" in cli.values() or "monthly" in cli.values()  # the collected one is known
    window.act_new.trigger()
    wiz = window.collect_wizard
    click(qtbot, wiz.underlyings_page.btn_none)
    for item in wiz.underlyings_page.items():
        if item.data(Qt.ItemDataRole.UserRole) == "NIFTY":
            item.setCheckState(Qt.CheckState.Checked)
    click(qtbot, wiz.button(WB.NextButton))
    p2 = wiz.expiries_page
    qtbot.waitUntil(lambda: not p2.is_loading() and bool(p2.expiry_items()), timeout=10000)
    for _, it in p2.expiry_items():
        assert it.text(1).replace("–", "-") == cli[it.text(0)], it.text(0)
        assert "est." not in it.text(1)
    wiz.reject()


def test_dashboard_counts_the_engine_process_requests_and_collected_expiries(
    qtbot, qloop, tmp_path
):
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.ui.choices import WizardSelection
    from expirytrack_desktop.ui.controller import Controller
    from expirytrack_desktop.ui.mainwindow import MainWindow
    from expirytrack_desktop.ui.services import LaunchOptions, Services
    from tests.test_ui_support import TODAY

    paths = AppPaths.under(tmp_path).ensure()
    services = Services.create(paths, LaunchOptions(demo=True, rate_limit="2000/1"))
    services.extra["demo_market"] = {
        "seed": 3, "today": TODAY, "underlyings": ("NIFTY",), "strikes_per_side": 1,
    }  # fmt: skip
    controller = Controller(services)
    window = MainWindow(controller)
    start = controller.schedule(controller.start())
    qtbot.waitUntil(start.done, timeout=20000)
    assert controller.host.engine_mode() == "process"
    key = "NSE_INDEX|Nifty 50"
    listed = controller.schedule(controller.catalog.list_expiries(key))
    qtbot.waitUntil(listed.done, timeout=30000)
    known = len(listed.result())
    sel = WizardSelection(expiries={key: [listed.result()[-1].expiry]}, months=1, concurrency=4)
    started = controller.schedule(controller.jobs.start_collection(sel))
    qtbot.waitUntil(started.done, timeout=20000)
    job_id = started.result()
    qtbot.waitUntil(lambda: status(controller.jobs_model, job_id) == "completed", timeout=60000)
    job_requests = controller.jobs_model.job(job_id).requests
    assert job_requests > 0
    page = window.dashboard_page

    def session_requests() -> int:
        line = next(t for t in page.usage_text().splitlines() if t.startswith("This session"))
        return int(line.split(": ")[1].split(" requests")[0].replace(",", ""))

    # the engine process reports its count within a second or so
    qtbot.waitUntil(lambda: session_requests() >= job_requests, timeout=10000)
    refresh = controller.schedule(page.refresh())
    qtbot.waitUntil(refresh.done, timeout=10000)
    assert page.cards["expiries"].value.text() == f"1 / {known}"
    close_app(qtbot, qloop, window, controller)


def test_the_eta_of_a_held_back_job_allows_for_the_wait_and_the_limits(qtbot):
    from expirytrack_desktop.ui.models import JobRow, JobsModel

    model = JobsModel()
    model.clock = lambda: 1_000.0
    model.set_rows([JobRow(id=3, status="running", total=87, done=26, eta=46.0)])
    assert model.index(0, 8).data() == "46s"
    model.set_budget_until(1_060.0, [(30, 60.0)])  # 30 per minute, used up for a minute
    # 60 s of wait, then the 61 items left need two more minutes at 30 per minute
    assert model.index(0, 8).data() == "3m 00s"
    assert model.index(0, 3).data() == "waiting for API budget until " + (
        QtCore.QDateTime.fromSecsSinceEpoch(1_060).toString("HH:mm:ss")
    )
    model.set_budget_until(None)
    assert model.index(0, 8).data() == "46s" and model.index(0, 3).data() == "running"


def test_the_engine_process_reports_its_budget_wait_to_the_window(qtbot, qloop, tmp_path):
    """The app's default: the limiter that waits is in the engine process; the window hears it."""
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.ui.choices import WizardSelection
    from expirytrack_desktop.ui.controller import Controller
    from expirytrack_desktop.ui.mainwindow import MainWindow
    from expirytrack_desktop.ui.services import LaunchOptions, Services
    from tests.test_ui_support import TODAY

    paths = AppPaths.under(tmp_path).ensure()
    services = Services.create(paths, LaunchOptions(demo=True, rate_limit="4/30"))
    services.extra["demo_market"] = {
        "seed": 3, "today": TODAY, "underlyings": ("NIFTY",), "strikes_per_side": 1,
    }  # fmt: skip
    controller = Controller(services)
    window = MainWindow(controller)
    window.show()
    start = controller.schedule(controller.start())
    qtbot.waitUntil(start.done, timeout=20000)
    assert controller.host.engine_mode() == "process"
    key = "NSE_INDEX|Nifty 50"
    listed = controller.schedule(controller.catalog.list_expiries(key))
    qtbot.waitUntil(listed.done, timeout=30000)
    sel = WizardSelection(expiries={key: [listed.result()[-1].expiry]}, months=1, concurrency=2)
    started = controller.schedule(controller.jobs.start_collection(sel))
    qtbot.waitUntil(started.done, timeout=30000)
    job_id = started.result()
    qtbot.waitUntil(window.lbl_wait.isVisible, timeout=30000)
    assert window.lbl_wait.text().startswith("Waiting for API budget until ")
    row = controller.jobs_model.row_of(job_id)
    qtbot.waitUntil(
        lambda: "waiting for API budget" in controller.jobs_model.index(row, 3).data(),
        timeout=5000,
    )
    cancel = controller.schedule(controller.jobs.cancel(job_id))
    qtbot.waitUntil(cancel.done, timeout=30000)
    qtbot.waitUntil(lambda: not window.lbl_wait.isVisible(), timeout=5000)
    close_app(qtbot, qloop, window, controller)
