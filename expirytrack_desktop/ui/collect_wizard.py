"""The 4-step collection wizard: underlyings → expiries → options → review and start.

Every page validates its input and says what is wrong under the fields; nothing here talks
to the API or the database directly: the controller asks the engine (expiries are loaded
live per underlying, the estimate comes from the engine's planner).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.collect import Estimate
from expirytrack_desktop.store.watchlists import Watchlist
from expirytrack_desktop.ui.choices import ExpiryChoice, WizardSelection
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.estimate_text import describe_estimate, late_summary
from expirytrack_desktop.ui.models import describe_rate_limit, waiting_text
from expirytrack_desktop.ui.qt import Qt, QtCore, QtWidgets, Signal
from expirytrack_desktop.ui.underlyings_page import KeyRole, UnderlyingsPage
from expirytrack_desktop.ui.watchlist_dialog import WatchlistDialog
from expirytrack_desktop.ui.widgets import BusyIndicator
from expirytrack_desktop.ui.wizard_common import (
    AppWizard,
    WizardPage,
    button_row,
    check_state,
    cycle_text,
    expiry_item,
    stored_list,
    tree_children,
    underlying_item,
)
from expirytrack_desktop.upstox.models import INTERVALS

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)

ExpiryRole = Qt.ItemDataRole.UserRole + 21
StateRole = Qt.ItemDataRole.UserRole + 22

CYCLE_UNKNOWN_TIP = (
    "Weekly or monthly is the API's own flag on the contracts, known once the contracts of "
    "this expiry are fetched (the command line shows the same)."
)
STORED_TIP = (
    "Known from the database; the API's current list replaces it when it arrives (it waits "
    "while the API budget is used up)."
)

STATE_TEXT = {
    "complete": "✔ collected",
    "partial": "◐ partly collected",
    "failed": "✖ failed items",
    "none": "new",
    "": "new",
}


# ---------------------------------------------------------------------------------- page 2
class ExpiriesPage(WizardPage):
    """Expiries loaded live per underlying; already-collected ones marked."""

    loaded = Signal()

    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "2. Expiries",
            "Expiries are read live from the API (about six months back). "
            "Tick the ones to collect.",
        )
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setObjectName("expiryTree")
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Expiry", "Cycle", "In database", "Listed by"])
        self.tree.setUniformRowHeights(True)
        self.tree.itemChanged.connect(self._changed)
        self.tree.header().setSectionResizeMode(
            0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents
        )
        self.busy = BusyIndicator("Loading expiries…")
        self.busy.hide()
        self.btn_all = QtWidgets.QPushButton("Select &all")
        self.btn_missing = QtWidgets.QPushButton("Only &missing")
        self.btn_missing.setToolTip("Select the expiries that are not completely collected yet")
        self.btn_none = QtWidgets.QPushButton("Select n&one")
        self.btn_reload = QtWidgets.QPushButton("&Reload")
        self.btn_all.clicked.connect(lambda: self.select(lambda c: True))
        self.btn_missing.clicked.connect(lambda: self.select(lambda c: c.state != "complete"))
        self.btn_none.clicked.connect(lambda: self.select(lambda c: False))
        self.btn_reload.clicked.connect(self.start_loading)
        self.count_label = QtWidgets.QLabel()
        row = button_row(self.btn_all, self.btn_missing, self.btn_none, self.btn_reload)
        row.addWidget(self.count_label)
        self.stack(self.busy, row, self.tree, main=self.tree)
        self._loaded_for: tuple[str, ...] | None = None
        self._errors: dict[str, str] = {}
        self._task: asyncio.Task[Any] | None = None
        self._budget_timer = QtCore.QTimer(self)
        self._budget_timer.setInterval(1000)
        self._budget_timer.timeout.connect(self._show_budget_wait)

    def _underlyings(self) -> list[tuple[str, str]]:
        wiz = self.wizard()
        return wiz.underlyings_page.selected() if wiz is not None else []  # type: ignore[attr-defined]

    def initializePage(self) -> None:
        super().initializePage()
        keys = tuple(k for _, k in self._underlyings())
        if keys != self._loaded_for:
            self.start_loading()

    def cleanupPage(self) -> None:
        pass  # keep the ticks when going back and forth

    def start_loading(self) -> None:
        self._task = self.controller.schedule(self._load(), name="wizard-expiries")

    async def _load(self) -> None:
        """The expiries already stored show at once (marked "stored"); the API's list
        replaces them when it arrives, which may take long when the API budget is used up."""
        underlyings = self._underlyings()
        self._loading = True
        self._errors = {}
        self.tree.clear()
        self.message.clear_message()
        self.busy.set_text(f"Loading expiries of {len(underlyings)} underlying(s)…")
        self.busy.show()
        self.refresh_complete()
        tops: dict[str, QtWidgets.QTreeWidgetItem] = {}
        try:
            for symbol, key in underlyings:
                top = underlying_item([symbol, "", "", ""], KeyRole, key)
                top.setToolTip(0, key)
                self.tree.addTopLevelItem(top)
                tops[key] = top
                try:
                    stored = await self.controller.catalog.stored_expiries(key)
                except Exception as exc:
                    log.warning("stored expiries of %s: %s", key, describe_error(exc))
                    stored = []
                self._fill(top, stored)
            self._update_count()
            self.refresh_complete()
            self._budget_timer.start()
            results = await asyncio.gather(
                *(self.controller.catalog.list_expiries(key) for _, key in underlyings),
                return_exceptions=True,
            )
            for (symbol, key), result in zip(underlyings, results, strict=True):
                top = tops[key]
                if isinstance(result, BaseException):
                    msg = describe_error(result)
                    self._errors[symbol] = msg
                    if top.childCount():
                        top.setText(2, f"⚠ stored expiries only: {msg}")
                    else:
                        top.setText(2, f"⚠ {msg}")
                        top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                    continue
                top.setText(2, "" if result else "no expired contracts available")
                self._fill(top, result)
            self._loaded_for = tuple(k for _, k in underlyings)
            if self._errors:
                self.message.error(
                    "Could not load expiries for "
                    + "; ".join(f"{s}: {m}" for s, m in self._errors.items())
                    + ". Fix it (e.g. log in) and press Reload, or go back and deselect them."
                )
        finally:
            self._budget_timer.stop()
            self._loading = False
            self.busy.hide()
            self._update_count()
            self.refresh_complete()
            self.loaded.emit()

    def _fill(self, top: QtWidgets.QTreeWidgetItem, choices: list[ExpiryChoice]) -> None:
        """Show ``choices`` under ``top`` (newest first), keeping the ticks already made."""
        children = [top.child(i) for i in range(top.childCount())]
        ticked = {
            c.data(0, ExpiryRole).expiry
            for c in children
            if c is not None and c.checkState(0) == Qt.CheckState.Checked
        }
        self.tree.blockSignals(True)
        try:
            top.takeChildren()
            if choices:
                top.setCheckState(0, Qt.CheckState.Unchecked)
            for choice in sorted(choices, key=lambda c: c.expiry, reverse=True):
                texts = [
                    choice.expiry.isoformat(),
                    cycle_text(choice.weekly),
                    STATE_TEXT.get(choice.state, choice.state),
                    "stored" if choice.stored else "API",
                ]
                child = expiry_item(texts, ExpiryRole, choice, checked=choice.expiry in ticked)
                if choice.weekly is None:
                    child.setToolTip(1, CYCLE_UNKNOWN_TIP)
                if choice.stored:
                    child.setToolTip(3, STORED_TIP)
                top.addChild(child)
            top.setExpanded(True)
        finally:
            self.tree.blockSignals(False)
        self._changed()

    def _show_budget_wait(self) -> None:
        until = self.controller.usage.budget_wait_until()
        text = "Loading expiries from the API…"
        if until is not None:
            text = f"Stored expiries shown; the API's list follows ({waiting_text(until)})…"
        self.busy.set_text(text)

    def expiry_items(self) -> list[tuple[str, QtWidgets.QTreeWidgetItem]]:
        return [(str(top.data(0, KeyRole)), child) for top, child in tree_children(self.tree)]

    def select(self, predicate) -> None:  # type: ignore[no-untyped-def]
        self.tree.blockSignals(True)
        for _, child in self.expiry_items():
            choice: ExpiryChoice = child.data(0, ExpiryRole)
            child.setCheckState(0, check_state(predicate(choice)))
        self.tree.blockSignals(False)
        self._changed()

    def selection(self) -> dict[str, list[date]]:
        out: dict[str, list[date]] = {}
        for key, child in self.expiry_items():
            if child.checkState(0) == Qt.CheckState.Checked:
                out.setdefault(key, []).append(child.data(0, ExpiryRole).expiry)
        return out

    def _changed(self, *_: object) -> None:
        self._update_count()
        if self.selection() and self.message.text().startswith("⚠ Select"):
            self.message.clear_message()
        self.refresh_complete()

    def _update_count(self) -> None:
        n = sum(len(v) for v in self.selection().values())
        total = len(self.expiry_items())
        self.count_label.setText(f"{n} of {total} expiries selected")

    def problem(self) -> str | None:
        if self._loading and not self.expiry_items():
            return "Still loading expiries…"
        if not self.selection():
            return "Select at least one expiry."
        return None


# ---------------------------------------------------------------------------------- page 3
class OptionsPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "3. Options",
            "Candle interval, how much history before each expiry, and parallelism.",
        )
        s = controller.services.settings
        self.interval = QtWidgets.QComboBox()
        self.interval.setObjectName("intervalCombo")
        for iv in INTERVALS:
            self.interval.addItem(iv, iv)
        self.interval.setCurrentIndex(max(0, self.interval.findData(s.default_interval)))
        self.months = QtWidgets.QSpinBox()
        self.months.setObjectName("monthsSpin")
        self.months.setRange(0, 12)
        self.months.setSpecialValueText("(choose)")
        self.months.setSuffix(" month(s) before expiry")
        self.months.setValue(s.history_months)
        self.concurrency = QtWidgets.QSpinBox()
        self.concurrency.setObjectName("concurrencySpin")
        self.concurrency.setRange(0, 64)
        self.concurrency.setSpecialValueText("(choose)")
        self.concurrency.setValue(s.concurrency)
        self.concurrency.setSuffix(" requests in flight")
        hint = QtWidgets.QLabel(
            "The rate limiter keeps every run under your account's limits "
            f"({describe_rate_limit(controller.usage.rate_limit_spec())}) whatever "
            "the concurrency; more in flight only hides network latency."
        )
        hint.setWordWrap(True)
        form = QtWidgets.QFormLayout(self)
        form.addRow("&Interval:", self.interval)
        form.addRow("&History window:", self.months)
        form.addRow("&Concurrency:", self.concurrency)
        form.addRow(hint)
        form.addRow(self.message)
        for w in (self.months, self.concurrency):
            w.valueChanged.connect(self.show_problem)
        self.interval.currentIndexChanged.connect(self.show_problem)

    def problem(self) -> str | None:
        if self.interval.currentData() not in INTERVALS:
            return "Choose an interval."
        if not 1 <= self.months.value() <= 12:
            return "History window must be 1 to 12 months (Upstox keeps about 6 months)."
        if not 1 <= self.concurrency.value() <= 64:
            return "Concurrency must be between 1 and 64."
        return None


# ---------------------------------------------------------------------------------- page 4
class ReviewPage(WizardPage):
    estimated = Signal()

    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "4. Review",
            "Check the plan, then press Start. You can pause or cancel at any time.",
        )
        self.summary = QtWidgets.QTextBrowser()
        self.summary.setObjectName("reviewSummary")
        self.summary.setOpenLinks(False)
        self.busy = BusyIndicator("Estimating requests and time…")
        self.busy.hide()
        self.keep = QtWidgets.QPushButton("&Keep this complete…")
        self.keep.setObjectName("keepComplete")
        self.keep.setToolTip(
            "Save these underlyings as a watchlist: every expiry Upstox offers, now and later, "
            "collected before it vanishes (expirytrack watch)"
        )
        self.keep.clicked.connect(self.keep_complete)
        self.stack(self.busy, self.summary, self.keep, main=self.summary)
        self._estimating = False
        self.estimate: Estimate | None = None
        self._estimated = False
        self.setFinalPage(True)
        self.setButtonText(QtWidgets.QWizard.WizardButton.FinishButton, "&Start")

    def initializePage(self) -> None:
        super().initializePage()
        self.controller.schedule(self._estimate(), name="wizard-estimate")

    async def _estimate(self) -> None:
        wiz: CollectWizard = self.wizard()  # type: ignore[assignment]
        sel = wiz.selection()
        self._estimating = True
        self._estimated = False
        self.estimate = None
        self.message.clear_message()
        self.busy.show()
        self.refresh_complete()
        self.summary.setHtml(self._html(sel, None))
        try:
            self.estimate = await self.controller.catalog.estimate(sel)
            self._estimated = True
            self.summary.setHtml(self._html(sel, self.estimate))
            late = late_summary(self.estimate)
            if late:
                self.message.error(late)
        except Exception as exc:
            self.message.error("Could not estimate: " + describe_error(exc))
        finally:
            self._estimating = False
            self.busy.hide()
            self.refresh_complete()
            self.estimated.emit()

    def _html(self, sel: WizardSelection, est: Estimate | None) -> str:
        rows = []
        for key, expiries in sel.expiries.items():
            label = html.escape(sel.labels.get(key, key))
            dates = ", ".join(d.isoformat() for d in sorted(expiries))
            rows.append(f"<tr><td><b>{label}</b></td><td>{len(expiries)}</td><td>{dates}</td></tr>")
        n_exp = sum(len(v) for v in sel.expiries.values())
        parts = [
            "<h3>Selection</h3>",
            "<table cellspacing=6><tr><th align=left>Underlying</th><th align=left>Expiries</th>"
            "<th align=left>Dates</th></tr>",
            *rows,
            "</table>",
            f"<p>{len(sel.expiries)} underlying(s), {n_exp} expiries · interval "
            f"<b>{sel.interval}</b> · <b>{sel.months}</b> month(s) of history · concurrency "
            f"<b>{sel.concurrency}</b></p>",
            "<h3>Estimate</h3>",
        ]
        estimating = est is None and not self._estimated
        parts.append("<p>Estimating…</p>" if estimating else describe_estimate(est))
        return "".join(parts)

    def keep_complete(self) -> None:
        """A watchlist of the chosen underlyings with the wizard's interval and months."""
        rt = self.controller.runtime
        if rt is None:
            return
        wiz: CollectWizard = self.wizard()  # type: ignore[assignment]
        sel = wiz.selection()
        dialog = WatchlistDialog(self, rt.db, self.controller.services.settings, self._kept)
        dialog.instruments.setText(", ".join(sel.labels.get(k, k) for k in sel.expiries))
        dialog.months.setValue(sel.months)
        dialog.interval = sel.interval
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.keep_dialog = dialog
        dialog.open()

    def _kept(self, wl: Watchlist) -> None:
        self.message.info(
            f"Saved watchlist {wl.name}: Schedules lists it; `expirytrack watch run {wl.name}` "
            "or a daily schedule keeps it complete."
        )

    def ready(self) -> bool:
        return not self._estimating

    def validatePage(self) -> bool:
        return not self._estimating


class CollectWizard(AppWizard):
    """Open with :meth:`open` (non-blocking); emits ``jobStarted(job_id)`` after Start."""

    jobStarted = Signal(int)
    startFailed = Signal(str)

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(controller, parent, name="collectWizard", title="New Collection")
        self.setOption(QtWidgets.QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.underlyings_page = UnderlyingsPage(controller)
        self.expiries_page = ExpiriesPage(controller)
        self.options_page = OptionsPage(controller)
        self.review_page = ReviewPage(controller)
        self.add_pages(
            self.underlyings_page, self.expiries_page, self.options_page, self.review_page
        )
        self.resize(760, 560)
        self._restore_choices()
        self.job_id: int | None = None
        self._starting = False

    def selection(self) -> WizardSelection:
        labels = dict((k, s) for s, k in self.underlyings_page.selected())
        return WizardSelection(
            expiries=self.expiries_page.selection(),
            labels=labels,
            interval=str(self.options_page.interval.currentData()),
            months=self.options_page.months.value(),
            concurrency=self.options_page.concurrency.value(),
        )

    def _restore_choices(self) -> None:
        qs = self.controller.services.qsettings()
        last = stored_list(qs, "collect/underlyings")
        if last:
            self.underlyings_page.set_checked(last)
        interval = qs.value("collect/interval")
        if interval:
            i = self.options_page.interval.findData(interval)
            if i >= 0:
                self.options_page.interval.setCurrentIndex(i)
        for name, spin in (
            ("collect/months", self.options_page.months),
            ("collect/concurrency", self.options_page.concurrency),
        ):
            v = qs.value(name)
            if v is not None:
                with contextlib.suppress(TypeError, ValueError):
                    spin.setValue(int(v))

    def _save_choices(self, sel: WizardSelection) -> None:
        qs = self.controller.services.qsettings()
        qs.setValue("collect/underlyings", list(sel.expiries))
        qs.setValue("collect/interval", sel.interval)
        qs.setValue("collect/months", sel.months)
        qs.setValue("collect/concurrency", sel.concurrency)
        qs.sync()

    def validateCurrentPage(self) -> bool:
        # QWizard.done(Accepted) validates again: once the job is started, let it close.
        if self.job_id is not None:
            return True
        ok = super().validateCurrentPage()
        if ok and self.currentPage() is self.review_page:
            if self._starting:
                return False
            # Commit: start the job now (async); the wizard closes once it is persisted.
            self.controller.schedule(self._start(), name="wizard-start")
            return False
        return ok

    async def _start(self) -> None:
        sel = self.selection()
        self._starting = True
        self.button(QtWidgets.QWizard.WizardButton.FinishButton).setEnabled(False)
        try:
            job_id = await self.controller.jobs.start_collection(sel)
        except Exception as exc:
            msg = describe_error(exc)
            self.review_page.message.error("Could not start: " + msg)
            self.button(QtWidgets.QWizard.WizardButton.FinishButton).setEnabled(True)
            self.startFailed.emit(msg)
            return
        finally:
            self._starting = False
        self._save_choices(sel)
        self.job_id = job_id
        self.jobStarted.emit(job_id)
        self.accept()
