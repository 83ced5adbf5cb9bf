"""The collection wizard driven by clicks to a finished collection; cancel/resume; re-login."""

from __future__ import annotations

import os
from urllib.parse import unquote

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import httpx
import pytest
from PySide6 import QtCore, QtWidgets

from expirytrack_desktop.ui.errors import describe_error
from tests.test_ui_support import close_app, make_window, small_simulator

Qt = QtCore.Qt
WB = QtWidgets.QWizard.WizardButton
# the offscreen platform says this about every top-level window; it is not our warning
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def status(model, job_id: int) -> str:
    row = model.job(job_id)
    return row.status if row is not None else ""


@pytest.fixture
def app_window(qtbot, qloop, tmp_path):
    sim = small_simulator()
    window, controller = make_window(tmp_path, sim)
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    yield window, controller, sim
    close_app(qtbot, qloop, window, controller)


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def run_wizard(qtbot, window, expiries: int = 1):
    """Open the wizard with the toolbar action and click through it; returns the wizard."""
    window.act_new.trigger()
    wiz = window.collect_wizard
    qtbot.waitExposed(wiz)
    p1 = wiz.underlyings_page
    click(qtbot, p1.btn_none)
    assert not p1.isComplete()
    # Next is refused with nothing selected
    assert not wiz.button(WB.NextButton).isEnabled()
    for item in p1.items():
        if item.data(Qt.ItemDataRole.UserRole) == "NIFTY":
            item.setCheckState(Qt.CheckState.Checked)
    assert [s for s, _ in p1.selected()] == ["NIFTY"]
    click(qtbot, wiz.button(WB.NextButton))

    p2 = wiz.expiries_page
    assert wiz.currentPage() is p2
    qtbot.waitUntil(lambda: not p2.is_loading() and bool(p2.expiry_items()), timeout=10000)
    items = p2.expiry_items()
    cycles = {it.text(1) for _, it in items}
    assert cycles <= {"weekly", "monthly", "–"}  # the API's flag, or not known yet; no guess
    click(qtbot, p2.btn_none)
    assert not wiz.button(WB.NextButton).isEnabled()
    click(qtbot, p2.btn_missing)  # nothing collected yet: selects every expiry
    assert sum(len(v) for v in p2.selection().values()) == len(items)
    click(qtbot, p2.btn_none)
    chosen = []
    for _, it in items[:expiries]:
        it.setCheckState(0, Qt.CheckState.Checked)
        chosen.append(it.text(0))
    click(qtbot, wiz.button(WB.NextButton))

    p3 = wiz.options_page
    assert wiz.currentPage() is p3
    p3.months.setValue(0)
    assert "1 to 12" in p3.message.text()
    assert not wiz.button(WB.NextButton).isEnabled()
    p3.months.setValue(1)
    p3.concurrency.setValue(4)
    click(qtbot, wiz.button(WB.NextButton))

    p4 = wiz.review_page
    assert wiz.currentPage() is p4
    qtbot.waitUntil(lambda: p4.estimate is not None and p4.isComplete(), timeout=10000)
    qtbot.waitUntil(wiz.button(WB.FinishButton).isEnabled, timeout=5000)
    html = p4.summary.toPlainText()
    assert "API requests" in html and chosen[0] in html
    return wiz, chosen


def test_wizard_clicks_through_to_a_finished_collection(qtbot, app_window):
    window, controller, _sim = app_window
    wiz, chosen = run_wizard(qtbot, window)
    with qtbot.waitSignal(wiz.jobStarted, timeout=10000) as started:
        click(qtbot, wiz.button(WB.FinishButton))
    job_id = started.args[0]
    model = controller.jobs_model
    qtbot.waitUntil(lambda: status(model, job_id) == "completed", timeout=30000)
    row = model.job(job_id)
    assert row.total > 0 and row.done == row.total and row.failed == 0
    assert row.candles > 0
    assert row.underlyings == "NIFTY" and row.expiries == chosen[0]
    # the dashboard shows the expiry as complete, with counts from the store
    window.tabs.setCurrentWidget(window.dashboard_page)
    task = controller.schedule(window.dashboard_page.refresh())
    qtbot.waitUntil(task.done, timeout=5000)
    cov = window.dashboard_page.grid.months_model
    chips = [c for cell in cov.cells.values() for c in cell]
    assert [(c.expiry.isoformat(), c.state) for c in chips if c.state == "complete"] == [
        (chosen[0], "complete")
    ]
    assert window.dashboard_page.cards["candles"].value.text() == f"{row.candles:,}"
    # the wizard marks it as collected the next time
    window.act_new.trigger()
    wiz2 = window.collect_wizard
    wiz2.underlyings_page.set_checked(["NIFTY"])
    click(qtbot, wiz2.button(WB.NextButton))
    p2 = wiz2.expiries_page
    qtbot.waitUntil(lambda: not p2.is_loading() and bool(p2.expiry_items()), timeout=10000)
    marks = {it.text(0): it.text(2) for _, it in p2.expiry_items()}
    assert marks[chosen[0]] == "✔ collected"
    click(qtbot, p2.btn_missing)
    assert chosen[0] not in {d.isoformat() for v in p2.selection().values() for d in v}
    wiz2.reject()


def test_cancel_and_resume_from_the_jobs_table(qtbot, app_window):
    window, controller, _sim = app_window
    wiz, _ = run_wizard(qtbot, window, expiries=2)
    # slow the run down so there is time to cancel it mid-way
    from expirytrack_desktop.upstox.factory import process_limiter

    slow = process_limiter("20/1")
    controller.runtime.client.limiter = slow
    with qtbot.waitSignal(wiz.jobStarted, timeout=10000) as started:
        click(qtbot, wiz.button(WB.FinishButton))
    job_id = started.args[0]
    page = window.jobs_page
    model = controller.jobs_model
    qtbot.waitUntil(lambda: bool(model.job(job_id)) and model.job(job_id).done > 0, timeout=15000)
    page.select_job(job_id)
    assert page.btn_pause.isEnabled()
    click(qtbot, page.btn_pause)
    qtbot.waitUntil(lambda: status(model, job_id) == "paused", timeout=5000)
    click(qtbot, page.btn_resume)
    qtbot.waitUntil(lambda: status(model, job_id) == "running", timeout=5000)
    click(qtbot, page.btn_cancel)
    qtbot.waitUntil(lambda: status(model, job_id) == "cancelled", timeout=10000)
    partial = model.job(job_id)
    assert 0 < partial.done < partial.total
    page.select_job(job_id)
    assert page.btn_resume.isEnabled()
    controller.runtime.client.limiter = process_limiter("2000/1")
    click(qtbot, page.btn_resume)
    qtbot.waitUntil(lambda: status(model, job_id) == "completed", timeout=30000)
    assert model.rowCount() == 1  # resumed the same job, no new row
    done = model.job(job_id)
    assert done.failed == 0


def test_expired_token_pauses_and_login_resumes(qtbot, app_window):
    window, controller, sim = app_window
    wiz, _ = run_wizard(qtbot, window, expiries=2)
    sim.expire_tokens_after(12)
    with qtbot.waitSignal(controller.loginNeeded, timeout=20000):
        click(qtbot, wiz.button(WB.FinishButton))
    model = controller.jobs_model
    job_id = model.rows()[0].id
    qtbot.waitUntil(lambda: status(model, job_id) == "needs_login", timeout=5000)
    assert model.job(job_id).failed == 0  # nothing failed, progress kept
    assert "log in again" in model.data(model.index(0, 3))
    # the prompt offers to log in; log in (demo: a fresh token from the simulator)
    qtbot.waitUntil(lambda: getattr(window, "login_prompt", None) is not None, timeout=5000)
    window.login_prompt.reject()
    window.on_login()
    dlg = window.findChild(QtWidgets.QDialog, "loginDialog")
    assert dlg is not None
    dlg.tabs.setCurrentIndex(1)
    dlg.token_edit.setText(sim.issue_token())
    click(qtbot, dlg.btn_paste)
    qtbot.waitUntil(lambda: status(model, job_id) == "completed", timeout=30000)
    assert model.job(job_id).failed == 0
    assert controller.auth.logged_in()
    # the same run waited and went on (README "Long runs"), it was not stopped and restarted
    logs = controller.schedule(controller.jobs.log(job_id))
    qtbot.waitUntil(logs.done, timeout=5000)
    messages = [m for _, _, m in logs.result().entries]
    assert "a new login is in use: continuing" in messages
    assert not any("rerun" in m for m in messages)


def test_collection_runs_in_the_engine_process(qtbot, qloop, tmp_path):
    """The app's default: collections run in a child process; progress comes back live."""
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.ui.choices import WizardSelection
    from expirytrack_desktop.ui.controller import Controller
    from expirytrack_desktop.ui.services import LaunchOptions, Services
    from tests.test_ui_support import TODAY, close_app

    paths = AppPaths.under(tmp_path).ensure()
    services = Services.create(paths, LaunchOptions(demo=True, rate_limit="2000/1"))
    services.extra["demo_market"] = {
        "seed": 3, "today": TODAY, "underlyings": ("NIFTY",), "strikes_per_side": 1,
    }  # fmt: skip
    controller = Controller(services)
    from expirytrack_desktop.ui.mainwindow import MainWindow

    window = MainWindow(controller)
    start = controller.schedule(controller.start())
    qtbot.waitUntil(start.done, timeout=20000)
    assert controller.host.engine_mode() == "process"
    key = "NSE_INDEX|Nifty 50"
    listed = controller.schedule(controller.catalog.list_expiries(key))
    qtbot.waitUntil(listed.done, timeout=30000)
    expiry = listed.result()[-1].expiry
    seen = []
    controller.jobs_model.modelReset.connect(lambda: seen.append("reset"))
    started = controller.schedule(
        controller.jobs.start_collection(
            WizardSelection(expiries={key: [expiry]}, months=1, concurrency=4)
        )
    )
    qtbot.waitUntil(started.done, timeout=20000)
    job_id = started.result()
    qtbot.waitUntil(lambda: status(controller.jobs_model, job_id) == "completed", timeout=60000)
    row = controller.jobs_model.job(job_id)
    assert row.failed == 0 and row.candles > 0 and row.requests > 0
    stats = controller.schedule(controller.usage.database_stats())
    qtbot.waitUntil(stats.done, timeout=5000)
    assert stats.result()["candles"] == row.candles
    close_app(qtbot, qloop, window, controller)
    assert controller.api._proc is None  # the child was asked to close and has ended


def test_a_job_interrupted_by_a_crash_shows_resumable_and_resumes(qtbot, app_window):
    """Jobs survive restarts: a 'running' job whose process died is offered for Resume."""
    window, controller, _sim = app_window
    rt = controller.runtime
    key = "NSE_INDEX|Nifty 50"
    listed = controller.schedule(controller.catalog.list_expiries(key))
    qtbot.waitUntil(listed.done, timeout=10000)
    from expirytrack_desktop.collect import Selection

    sel = Selection([key], [listed.result()[-1].expiry], "1minute", 1)
    job_id = rt.db.create_job("collect", sel.to_params(), underlyings="NIFTY", expiries="x")
    rt.db.update_job(job_id, status="running", pid=2**22 + 12345, started_at="2025-01-01 00:00:00")
    reload = controller.schedule(controller.jobs.reload())  # as after a restart
    qtbot.waitUntil(reload.done, timeout=5000)
    model = controller.jobs_model
    assert status(model, job_id) == "interrupted"
    assert model.data(model.index(model.row_of(job_id), 3)) == "interrupted (resumable)"
    page = window.jobs_page
    page.select_job(job_id)
    assert page.btn_resume.isEnabled() and not page.btn_pause.isEnabled()
    click(qtbot, page.btn_resume)
    qtbot.waitUntil(lambda: status(model, job_id) == "completed", timeout=30000)
    assert model.job(job_id).failed == 0 and model.job(job_id).candles > 0


def test_the_engine_process_is_restarted_after_it_dies(qtbot, qloop, tmp_path):
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.ui.controller import Controller
    from expirytrack_desktop.ui.mainwindow import MainWindow
    from expirytrack_desktop.ui.services import LaunchOptions, Services
    from tests.test_ui_support import TODAY, close_app

    paths = AppPaths.under(tmp_path).ensure()
    services = Services.create(paths, LaunchOptions(demo=True, rate_limit="2000/1"))
    services.extra["demo_market"] = {"seed": 3, "today": TODAY, "underlyings": ("NIFTY",)}
    controller = Controller(services)
    window = MainWindow(controller)
    start = controller.schedule(controller.start())
    qtbot.waitUntil(start.done, timeout=20000)
    key = "NSE_INDEX|Nifty 50"
    first = controller.schedule(controller.catalog.list_expiries(key))
    qtbot.waitUntil(first.done, timeout=30000)
    proc = controller.api._proc
    proc.kill()  # a crash of the engine process
    proc.join(10)
    second = controller.schedule(controller.catalog.list_expiries(key))
    qtbot.waitUntil(second.done, timeout=30000)
    assert [c.expiry for c in second.result()] == [c.expiry for c in first.result()]
    assert controller.api._proc is not proc and controller.api._proc.is_alive()
    close_app(qtbot, qloop, window, controller)


class FailingCandles(httpx.AsyncBaseTransport):
    """The simulator, except that candle requests for ``keys`` answer HTTP 500 while
    ``failing``; records every candle window asked for as (key, from, to)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, keys: set[str]) -> None:
        self.inner = inner
        self.keys = keys
        self.failing = True
        self.asked: list[tuple[str, str, str]] = []
        self.failed: list[tuple[str, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        parts = [unquote(p) for p in request.url.path.split("/")]
        if "historical-candle" in parts:
            i = parts.index("historical-candle")
            window = (parts[i + 1], parts[i + 4], parts[i + 3])  # the path has to before from
            self.asked.append(window)
            if self.failing and window[0] in self.keys:
                self.failed.append(window)
                return httpx.Response(
                    500, json={"status": "error", "errors": [{"message": "Something went wrong"}]}
                )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_retry_failed_fetches_exactly_the_failed_windows(qtbot, qloop, tmp_path):
    from expirytrack_desktop.ui.choices import WizardSelection

    sim = small_simulator()
    nifty = "NSE_INDEX|Nifty 50"
    expiry = sim.market.expiries(nifty)[-1]
    options = sim.market.option_contracts(nifty, expiry)
    broken = {options[0]["instrument_key"], options[-1]["instrument_key"]}
    assert len(broken) == 2 and len(options) > 2
    transports: list[FailingCandles] = []

    def wrap(inner):
        transports.append(FailingCandles(inner, broken))
        return transports[-1]

    window, controller = make_window(
        tmp_path,
        sim,
        wrap_transport=wrap,
        client_options={"max_attempts": 1, "backoff_base": 0.0},  # a 500 fails at once
    )
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    try:
        (net,) = transports
        sel = WizardSelection(expiries={nifty: [expiry]}, months=1, concurrency=4)
        start = controller.schedule(controller.jobs.start_collection(sel))
        qtbot.waitUntil(start.done, timeout=10000)
        job_id = start.result()
        model = controller.jobs_model
        qtbot.waitUntil(
            lambda: status(model, job_id) == "failed" and not controller.jobs.is_running(job_id),
            timeout=30000,
        )
        first = model.job(job_id)
        assert net.failed and {k for k, _, _ in net.failed} == broken
        assert first.failed == len(net.failed) == len(set(net.failed))
        assert first.done + first.failed == first.total
        ok_before = [w for w in net.asked if w[0] not in broken]

        net.failing = False
        net.asked.clear()
        page = window.jobs_page
        window.tabs.setCurrentWidget(page)
        page.select_job(job_id)
        qtbot.waitUntil(page.btn_retry.isEnabled, timeout=5000)
        click(qtbot, page.btn_retry)
        qtbot.waitUntil(
            lambda: status(model, job_id) == "completed" and not controller.jobs.is_running(job_id),
            timeout=30000,
        )
        assert sorted(net.asked) == sorted(net.failed)  # exactly those windows, once each
        assert model.job(job_id).failed == 0 and model.rowCount() == 1
        rt = controller.runtime
        left = controller.schedule(rt.db.run(rt.db.failed_windows))
        qtbot.waitUntil(left.done, timeout=5000)
        assert left.result() == [] and ok_before
    finally:
        close_app(qtbot, qloop, window, controller)


def test_an_expiry_not_offered_is_refused_before_a_job_exists(qtbot, app_window):
    from datetime import date

    from expirytrack_desktop.collect import SelectionError
    from expirytrack_desktop.ui.choices import WizardSelection

    _window, controller, _sim = app_window
    sel = WizardSelection(
        expiries={"NSE_INDEX|Nifty 50": [date(2020, 1, 2)]}, months=1, concurrency=4
    )
    start = controller.schedule(controller.jobs.start_collection(sel))
    qtbot.waitUntil(start.done, timeout=10000)
    assert isinstance(start.exception(), SelectionError)
    assert "2020-01-02 is not offered by the API" in describe_error(start.exception())
    rt = controller.runtime
    jobs = controller.schedule(rt.db.run(rt.db.list_jobs))
    qtbot.waitUntil(jobs.done, timeout=5000)
    assert jobs.result() == [] and controller.jobs_model.rowCount() == 0
