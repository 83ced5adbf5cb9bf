"""The main window: menu bar, toolbar, pages (Jobs, Dashboard, Exports), log dock, status bar.

The viewer pages (chart, chain, quality, schedules) and the dialogs are imported and built
when first needed (``ui.lazy_tabs``), so a cold start pays only for what the first screen
shows (bench/bench_ui_startup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from expirytrack_desktop import APP_NAME, __version__
from expirytrack_desktop.ui.dashboard import DashboardPage
from expirytrack_desktop.ui.exports_page import ExportsPage
from expirytrack_desktop.ui.jobs_page import JobsPage
from expirytrack_desktop.ui.lazy_tabs import LazyTabs
from expirytrack_desktop.ui.logpanel import LogPanel
from expirytrack_desktop.ui.models import describe_rate_limit, fmt_bytes, fmt_span, waiting_text
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal
from expirytrack_desktop.upstox.limiter import RateLimitSpec

if TYPE_CHECKING:
    from expirytrack_desktop.ui.chain_page import ChainPage
    from expirytrack_desktop.ui.chart_page import ChartPage
    from expirytrack_desktop.ui.controller import Controller
    from expirytrack_desktop.ui.quality_page import QualityPage
    from expirytrack_desktop.ui.schedules_page import SchedulesPage

log = logging.getLogger(__name__)

STATUS_INTERVAL_MS = 1000
# The schedules page also warns (tray) when a run would start after the token expires: if
# nobody opened it, it is built this long after start-up and checks then and every 30 s.
SCHEDULES_CHECK_AFTER_MS = 30_000
# Lists and tables draw no focus frame of their own in most styles: show where the keyboard is.
FOCUS_STYLE = "QAbstractItemView:focus { border: 2px solid palette(highlight); }"


class MainWindow(QtWidgets.QMainWindow):
    """Owns the pages and actions; all engine work goes through :class:`Controller`."""

    quitRequested = Signal()

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        controller.auth.dialog_parent = self
        self.services = controller.services
        self.quit_event = asyncio.Event()
        self._closing = False
        self._quit_confirmed = False
        self.quit_box: QtWidgets.QMessageBox | None = None
        self.quit_buttons: dict[str, QtWidgets.QAbstractButton] = {}
        title = APP_NAME + (" — DEMO (simulated market)" if self.services.demo else "")
        self.setWindowTitle(title)
        self.setObjectName("mainWindow")
        self.setStyleSheet(FOCUS_STYLE)
        self.resize(1180, 760)

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.jobs_page = JobsPage(controller)
        self.dashboard_page = DashboardPage(controller)
        self.exports_page = ExportsPage(controller)
        self.tabs.addTab(self.jobs_page, "&Jobs")
        self.tabs.addTab(self.dashboard_page, "&Dashboard")
        self.tabs.addTab(self.exports_page, "E&xports")
        self.lazy_tabs = LazyTabs(self.tabs)
        self.lazy_tabs.add("chart", "&Chart", self._make_chart_page)
        self.lazy_tabs.add("chain", "Option cha&in", self._make_chain_page)
        self.lazy_tabs.add("quality", "Data &quality", self._make_quality_page)
        self.lazy_tabs.add("schedules", "Schedu&les", self._make_schedules_page)
        QtCore.QTimer.singleShot(SCHEDULES_CHECK_AFTER_MS, self, self._check_schedules)
        self.tray: QtWidgets.QSystemTrayIcon | None = None
        if QtWidgets.QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QtWidgets.QSystemTrayIcon(self.windowIcon(), self)
            self.tray.setToolTip(title)
            self.tray.show()
        self.dashboard_page.at_risk.atRisk.connect(self.notify)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.setCentralWidget(self.tabs)

        self.log_panel = LogPanel()
        self.log_dock = QtWidgets.QDockWidget("Log", self)
        self.log_dock.setObjectName("logDock")
        self.log_dock.setWidget(self.log_panel)
        self.log_dock.setFeatures(
            QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [150], Qt.Orientation.Vertical)
        self.log_panel.attach()

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._make_statusbar()

        self.status_timer = QtCore.QTimer(self)
        self.status_timer.setInterval(STATUS_INTERVAL_MS)
        self.status_timer.timeout.connect(self.refresh_status)
        self.status_timer.start()

        controller.authChanged.connect(self.refresh_status)
        controller.authChanged.connect(self._update_actions)
        controller.loginNeeded.connect(self._on_login_needed)
        controller.loginNeeded.connect(self.notify)  # the tray too: a long run may be unattended
        controller.engineFailed.connect(self._on_engine_failed)
        controller.databaseChanged.connect(self.dashboard_page.schedule_refresh)
        controller.databaseChanged.connect(controller.analysis.refresh)
        controller.exportsChanged.connect(self.exports_page.schedule_refresh)
        self.restore_state()
        self._update_actions()
        self.refresh_status()

    # --- pages built on first use ------------------------------------------------------------
    @property
    def chart_page(self) -> ChartPage:
        return self.lazy_tabs.page("chart")  # type: ignore[return-value]

    @property
    def chain_page(self) -> ChainPage:
        return self.lazy_tabs.page("chain")  # type: ignore[return-value]

    @property
    def quality_page(self) -> QualityPage:
        return self.lazy_tabs.page("quality")  # type: ignore[return-value]

    @property
    def schedules_page(self) -> SchedulesPage:
        return self.lazy_tabs.page("schedules")  # type: ignore[return-value]

    def _make_chart_page(self) -> QtWidgets.QWidget:
        from expirytrack_desktop.ui.chart_page import ChartPage

        return ChartPage(self.controller)

    def _make_chain_page(self) -> QtWidgets.QWidget:
        from expirytrack_desktop.ui.chain_page import ChainPage

        return ChainPage(self.controller)

    def _make_quality_page(self) -> QtWidgets.QWidget:
        from expirytrack_desktop.ui.quality_page import QualityPage

        return QualityPage(self.controller)

    def _make_schedules_page(self) -> QtWidgets.QWidget:
        from expirytrack_desktop.ui.schedules_page import SchedulesPage

        page = SchedulesPage(self.controller)
        page.needsLogin.connect(self.notify)
        return page

    def _check_schedules(self) -> None:
        if not self._closing and not self.lazy_tabs.is_built("schedules"):
            self.schedules_page.refresh()

    # --- actions -------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QtGui.QAction:  # type: ignore[no-untyped-def]
        act = QtGui.QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, QtGui.QKeySequence.StandardKey):
                act.setShortcut(QtGui.QKeySequence(shortcut))
            else:
                act.setShortcut(QtGui.QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(
                f"{tip} ({act.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText)})"
                if not act.shortcut().isEmpty()
                else tip
            )
        if icon is not None:
            act.setIcon(self.style().standardIcon(icon))
        act.triggered.connect(slot)
        return act

    def _make_actions(self) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        self.act_login = self._action(
            "&Login…", self.on_login, "Ctrl+L", "Log in to Upstox", sp.SP_DialogYesButton
        )
        self.act_logout = self._action(
            "Log&out",
            self.on_logout,
            "Ctrl+Shift+L",
            "Log out and revoke the token",
            sp.SP_DialogNoButton,
        )
        self.act_new = self._action(
            "&New Collection…",
            self.on_new_collection,
            QtGui.QKeySequence.StandardKey.New,
            "Choose underlyings and expiries to collect",
            sp.SP_FileDialogNewFolder,
        )
        self.act_export = self._action(
            "&Export…",
            self.on_export,
            "Ctrl+E",
            "Export collected data",
            sp.SP_DialogSaveButton,
        )
        self.act_settings = self._action(
            "&Settings…",
            self.on_settings,
            "Ctrl+,",
            "Credentials, folders, rate limits",
            sp.SP_FileDialogDetailedView,
        )
        self.act_quit = self._action(
            "&Quit",
            self.request_quit,
            QtGui.QKeySequence.StandardKey.Quit,
            "Quit ExpiryTrack",
            sp.SP_DialogCloseButton,
        )
        self.act_refresh = self._action(
            "&Refresh",
            self.refresh_all,
            QtGui.QKeySequence.StandardKey.Refresh,
            "Reload jobs, dashboard and exports",
            sp.SP_BrowserReload,
        )
        self.act_about = self._action("&About", self.on_about)
        self.act_toggle_log = self.log_dock.toggleViewAction()
        self.act_toggle_log.setText("Show &log")
        self.act_toggle_log.setShortcut(QtGui.QKeySequence("Ctrl+Shift+G"))

    def _make_menus(self) -> None:
        mb = self.menuBar()
        m_file = mb.addMenu("&File")
        for a in (self.act_new, self.act_export, None, self.act_settings, None, self.act_quit):
            m_file.addSeparator() if a is None else m_file.addAction(a)
        m_acc = mb.addMenu("&Account")
        m_acc.addAction(self.act_login)
        m_acc.addAction(self.act_logout)
        m_view = mb.addMenu("&View")
        m_view.addAction(self.act_refresh)
        m_view.addAction(self.act_toggle_log)
        m_help = mb.addMenu("&Help")
        m_help.addAction(self.act_about)

    def _make_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        for a in (
            self.act_login,
            self.act_logout,
            None,
            self.act_new,
            self.act_export,
            None,
            self.act_settings,
            self.act_quit,
        ):
            tb.addSeparator() if a is None else tb.addAction(a)

    def _make_statusbar(self) -> None:
        sb = self.statusBar()
        self.lbl_demo = QtWidgets.QLabel(" DEMO ")
        self.lbl_demo.setObjectName("demoLabel")
        font = self.lbl_demo.font()
        font.setBold(True)
        self.lbl_demo.setFont(font)
        self.lbl_demo.setAutoFillBackground(True)
        pal = self.lbl_demo.palette()
        pal.setColor(QtGui.QPalette.ColorRole.Window, pal.color(QtGui.QPalette.ColorRole.Highlight))
        pal.setColor(
            QtGui.QPalette.ColorRole.WindowText,
            pal.color(QtGui.QPalette.ColorRole.HighlightedText),
        )
        self.lbl_demo.setPalette(pal)
        self.lbl_demo.setToolTip("Demo mode: simulated market data in a separate database")
        self.lbl_user = QtWidgets.QLabel()
        self.lbl_db = QtWidgets.QLabel()
        self.lbl_rate = QtWidgets.QLabel()
        self.lbl_wait = QtWidgets.QLabel()
        self.lbl_wait.setObjectName("budgetWaitLabel")
        self.lbl_wait.setToolTip(
            "The API's rate limits are used up for now; requests go out again from then on. "
            "Nothing is lost while waiting."
        )
        self.lbl_wait.hide()
        self.lbl_shared = QtWidgets.QLabel("⚠ Another ExpiryTrack window has this database open")
        self.lbl_shared.setObjectName("sharedDatabaseLabel")
        self.lbl_shared.setToolTip(
            "Both windows are safe: each candle window is fetched once, and a job runs only "
            "in the window that started it (its progress and controls are there)."
        )
        self.lbl_shared.hide()
        for w in (self.lbl_user, self.lbl_db, self.lbl_rate):
            w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        if self.services.demo:
            sb.addWidget(self.lbl_demo)
        else:
            self.lbl_demo.hide()
        sb.addWidget(self.lbl_user)
        sb.addWidget(self.lbl_shared)
        sb.addPermanentWidget(self.lbl_wait)
        sb.addPermanentWidget(self.lbl_rate)
        sb.addPermanentWidget(self.lbl_db)

    # --- status ------------------------------------------------------------------------------
    def refresh_status(self) -> None:
        c = self.controller
        user = c.auth.summary()
        rt = c.runtime
        if rt is not None and rt.secrets.is_fallback and not self.services.demo:
            user += " · secrets: encrypted file (no OS keyring)"
        self.lbl_user.setText(user)
        self.lbl_user.setToolTip(c.auth.secret_store_description())
        path = self.services.db_path
        try:
            size = path.stat().st_size
            wal = path.with_name(path.name + "-wal")
            if wal.exists():
                size += wal.stat().st_size
            size_text = fmt_bytes(size)
        except OSError:
            size_text = "not created yet"
        self.lbl_db.setText(f"DB: {path.name} ({size_text})")
        self.lbl_db.setToolTip(str(path))
        self.lbl_shared.setVisible(c.window_lock.shared)
        until = c.usage.budget_wait_until()
        try:
            windows = RateLimitSpec.parse(c.usage.rate_limit_spec()).windows
        except ValueError:
            windows = ()
        c.jobs_model.set_budget_until(until, windows)
        if until is not None:
            text = waiting_text(until)
            self.lbl_wait.setText(text[0].upper() + text[1:])
        self.lbl_wait.setVisible(until is not None)
        self.lbl_rate.setText(self.rate_summary())
        self.lbl_rate.setToolTip(
            "Requests sent in each sliding window against its limit "
            f"({describe_rate_limit(c.usage.rate_limit_spec())}). "
            "Shared by every ExpiryTrack process of this user."
        )

    def rate_summary(self) -> str:
        usage = self.controller.usage.rate_usage()
        if not usage:
            return "API budget: –"
        parts = [f"{used:,}/{limit:,} per {fmt_span(sec)}" for sec, used, limit in usage]
        return "API budget: " + ", ".join(parts)

    def _update_actions(self) -> None:
        logged_in = self.controller.auth.logged_in()
        self.act_logout.setEnabled(logged_in)

    def _on_tab_changed(self, index: int) -> None:
        page = self.tabs.widget(index)
        refresh = getattr(page, "schedule_refresh", None)
        if refresh is not None:
            refresh()

    def notify(self, message: str) -> None:
        """A notification: the tray's balloon where there is a tray, else the status bar."""
        if self.tray is not None:
            self.tray.showMessage(APP_NAME, message, QtWidgets.QSystemTrayIcon.MessageIcon.Warning)
        self.statusBar().showMessage(message, 60_000)

    def refresh_all(self) -> None:
        self.jobs_page.schedule_refresh()
        self.dashboard_page.schedule_refresh()
        self.exports_page.schedule_refresh()
        self.refresh_status()

    # --- slots ---------------------------------------------------------------------------
    def on_login(self) -> None:
        from expirytrack_desktop.ui.login_dialog import LoginDialog

        dlg = LoginDialog(self.controller, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.login_dialog = dlg
        dlg.open()

    def _on_login_needed(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)
        if getattr(self, "_login_prompt_open", False):
            return
        self._login_prompt_open = True
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Warning)
        box.setWindowTitle("Log in again")
        box.setText(message)
        box.setInformativeText(
            "Running collections are paused; nothing is lost. They continue after you log in."
        )
        login = box.addButton("Log in…", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Later", QtWidgets.QMessageBox.ButtonRole.RejectRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def done(_: int) -> None:
            self._login_prompt_open = False
            if box.clickedButton() is login:
                self.on_login()

        box.finished.connect(done)
        self.login_prompt = box
        box.open()

    def _on_engine_failed(self, message: str) -> None:
        self.statusBar().showMessage(message)
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Critical)
        box.setWindowTitle("Cannot open the database")
        box.setText(message)
        box.setInformativeText(
            "Choose another database file in Settings (used after a restart), or start with "
            "--db PATH."
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.engine_error_box = box
        box.open()

    def on_logout(self) -> None:
        self.controller.auth.logout()

    def on_new_collection(self) -> None:
        from expirytrack_desktop.ui.collect_wizard import CollectWizard

        wiz = CollectWizard(self.controller, self)
        wiz.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wiz.jobStarted.connect(self._on_job_started)
        self.collect_wizard = wiz
        wiz.open()

    def _on_job_started(self, job_id: int) -> None:
        self.tabs.setCurrentWidget(self.jobs_page)
        self.jobs_page.select_job(job_id)

    def on_export(self) -> None:
        from expirytrack_desktop.ui.export_wizard import ExportWizard

        wiz = ExportWizard(self.controller, self)
        wiz.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.export_wizard = wiz
        wiz.open()

    def on_settings(self) -> None:
        from expirytrack_desktop.ui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.controller, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(self.refresh_all)
        self.settings_dialog = dlg
        dlg.open()

    def on_about(self) -> None:
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle(f"About {APP_NAME}")
        box.setText(
            f"<b>{APP_NAME}</b> {__version__}<br>Historical candles of expired Indian F&amp;O "
            "contracts from Upstox, into a local SQLite database."
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # --- state -----------------------------------------------------------------------------
    def restore_state(self) -> None:
        qs = self.services.qsettings()
        geo = qs.value("main/geometry")
        if isinstance(geo, QtCore.QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        state = qs.value("main/state")
        if isinstance(state, QtCore.QByteArray) and not state.isEmpty():
            self.restoreState(state)
        tab = qs.value("main/tab", 0)
        with contextlib.suppress(TypeError, ValueError):
            self.tabs.setCurrentIndex(int(str(tab)))

    def save_state(self) -> None:
        qs = self.services.qsettings()
        qs.setValue("main/geometry", self.saveGeometry())
        qs.setValue("main/state", self.saveState())
        qs.setValue("main/tab", self.tabs.currentIndex())
        qs.sync()

    def request_quit(self) -> None:
        self.close()

    def close_now(self) -> None:
        """Close without asking (the app is ending anyway; running jobs stop as interrupted)."""
        self._quit_confirmed = True
        self.close()

    def ask_quit(self, running: list[int]) -> None:
        """Jobs are running: stop them and quit, keep them running, or stay."""
        if self.quit_box is not None:
            self.quit_box.raise_()
            return
        n = len(running)
        box = QtWidgets.QMessageBox(self)
        box.setObjectName("quitQuestion")
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Quit ExpiryTrack?")
        box.setText(f"{n} collection{'s are' if n != 1 else ' is'} still running.")
        box.setInformativeText(
            "Stop and quit: what was fetched is kept, and the jobs come back as "
            "'interrupted' — press Resume after the next start.\n"
            "Keep running: the window is minimized and the collections go on."
        )
        stop = box.addButton("&Stop and quit", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("&Keep running…", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.quit_box = box
        self.quit_buttons = {"stop": stop, "keep": keep, "cancel": cancel}

        def done(_: int) -> None:
            self.quit_box = None
            clicked = box.clickedButton()
            if clicked is stop:
                self._quit_confirmed = True
                self.statusBar().showMessage("Stopping the running collections…")
                self.close()
            elif clicked is keep:
                self.statusBar().showMessage("Collections keep running.", 10000)
                self.showMinimized()

        box.finished.connect(done)
        box.open()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        running = self.controller.jobs.running()
        if not self._closing and running and not self._quit_confirmed:
            event.ignore()
            self.ask_quit(running)
            return
        if not self._closing:
            self._closing = True
            self.save_state()
            self.status_timer.stop()
            self.log_panel.detach()
            self.quitRequested.emit()
            self.quit_event.set()
        event.accept()
