"""The 4-step export wizard: instruments → expiries (with counts) → options → review/export.

All reads and the export itself run in worker threads (the export engine is blocking);
progress crosses back as the latest value, read by a timer, and Cancel sets the engine's
cancel event. The save dialog is opened non-blocking (``open()``), never ``exec()``.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.export.api import ExportOptions, default_filename
from expirytrack_desktop.export.csv_format import CSV_COLUMNS
from expirytrack_desktop.timeutil import ist_iso
from expirytrack_desktop.ui.dialogs import run_dialog
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.export_presets import PresetBar
from expirytrack_desktop.ui.export_save import save_dialog, start_folder
from expirytrack_desktop.ui.exports_page import open_folder
from expirytrack_desktop.ui.models import fmt_bytes, fmt_int
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal
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

KeyRole = Qt.ItemDataRole.UserRole + 30
ExpiryRole = Qt.ItemDataRole.UserRole + 31
FORMATS = (
    ("csv", "CSV (OpenAlgo columns)"),
    ("json", "JSON (hierarchical)"),
    ("zip", "ZIP (one CSV per contract + metadata.json)"),
    ("parquet", "Parquet (typed columns)"),
)


def qdate_to_date(qd: QtCore.QDate) -> date:
    return date(qd.year(), qd.month(), qd.day())


class InstrumentsPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller, "1. Instruments", "Underlyings with collected data in the database."
        )
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("exportInstrumentList")
        self.list.itemChanged.connect(lambda *_: self.refresh_complete())
        self.btn_all = QtWidgets.QPushButton("Select &all")
        self.btn_all.clicked.connect(lambda: self._check_all(True))
        self.busy = BusyIndicator("Reading the database…")
        self.stack(self.busy, button_row(self.btn_all), self.list, main=self.list)
        self.loaded = False

    async def load(self) -> None:
        self.busy.show()
        try:
            infos = await self.controller.exports.underlyings()
        except Exception as exc:
            self.message.error(describe_error(exc))
            return
        finally:
            self.busy.hide()
        self.list.blockSignals(True)
        self.list.clear()
        for info in infos:
            label = info.symbol or info.instrument_key
            item = QtWidgets.QListWidgetItem(
                f"{label}  —  {info.expiries} expiries, {info.contracts:,} contracts"
            )
            item.setData(KeyRole, info.instrument_key)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(check_state(len(infos) == 1))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if not infos:
            self.message.error("Nothing collected yet: run a collection first.")
        self.loaded = True
        self.refresh_complete()

    def _check_all(self, on: bool) -> None:
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(check_state(on))

    def set_checked(self, keys: list[str]) -> None:
        for i in range(self.list.count()):
            it = self.list.item(i)
            it.setCheckState(check_state(it.data(KeyRole) in keys))

    def selected(self) -> list[str]:
        return [
            str(self.list.item(i).data(KeyRole))
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def problem(self) -> str | None:
        return None if self.selected() else "Select at least one instrument."


class ExportExpiriesPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller, "2. Expiries", "Expiries in the database, with contract and candle counts."
        )
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setObjectName("exportExpiryTree")
        self.tree.setHeaderLabels(["Expiry", "Cycle", "Contracts", "Candles"])
        self.tree.itemChanged.connect(lambda *_: self.refresh_complete())
        self.busy = BusyIndicator("Counting candles…")
        self.busy.hide()
        self.btn_all = QtWidgets.QPushButton("Select &all")
        self.btn_none = QtWidgets.QPushButton("Select n&one")
        self.btn_all.clicked.connect(lambda: self._check(True))
        self.btn_none.clicked.connect(lambda: self._check(False))
        self.stack(self.busy, button_row(self.btn_all, self.btn_none), self.tree, main=self.tree)
        self._loading = False
        self._for: tuple[str, ...] | None = None

    def initializePage(self) -> None:
        super().initializePage()
        keys = tuple(self.wizard().instruments_page.selected())  # type: ignore[attr-defined]
        if keys != self._for:
            self.controller.schedule(self.load(keys), name="export-expiries")

    def cleanupPage(self) -> None:
        pass

    def is_loading(self) -> bool:
        return self._loading

    async def load(self, keys: tuple[str, ...]) -> None:
        self._loading = True
        self.refresh_complete()
        self.busy.show()
        self.tree.clear()
        try:
            infos = await self.controller.exports.expiries(list(keys))
        except Exception as exc:
            self.message.error(describe_error(exc))
            return
        finally:
            self._loading = False
            self.busy.hide()
        self.tree.blockSignals(True)
        tops: dict[str, QtWidgets.QTreeWidgetItem] = {}
        infos = [i for i in infos if i.contracts > 0]  # expiries never collected: nothing to export
        for info in sorted(infos, key=lambda i: (i.instrument_key, i.expiry), reverse=True):
            top = tops.get(info.instrument_key)
            if top is None:
                label = self.controller.catalog.symbol_for_key(info.instrument_key)
                top = underlying_item([label], KeyRole, info.instrument_key)
                top.setCheckState(0, Qt.CheckState.Unchecked)
                self.tree.addTopLevelItem(top)
                tops[info.instrument_key] = top
            cycle = cycle_text(info.is_weekly)
            candles = "" if info.candles is None else f"{info.candles:,}"
            texts = [info.expiry.isoformat(), cycle, f"{info.contracts:,}", candles]
            child = expiry_item(texts, ExpiryRole, info.expiry, checked=bool(info.candles))
            top.addChild(child)
            top.setExpanded(True)
        self.tree.blockSignals(False)
        for i in range(4):
            self.tree.resizeColumnToContents(i)
        self._for = keys
        self.refresh_complete()

    def _items(self) -> list[QtWidgets.QTreeWidgetItem]:
        return [child for _, child in tree_children(self.tree)]

    def _check(self, on: bool) -> None:
        self.tree.blockSignals(True)
        for it in self._items():
            it.setCheckState(0, check_state(on))
        self.tree.blockSignals(False)
        self.refresh_complete()

    def selected(self) -> tuple[date, ...]:
        return tuple(
            sorted(
                {
                    it.data(0, ExpiryRole)
                    for it in self._items()
                    if it.checkState(0) == Qt.CheckState.Checked
                }
            )
        )

    def problem(self) -> str | None:
        return None if self.selected() else "Select at least one expiry."

    def ready(self) -> bool:
        return not self._loading and super().ready()


class ExportOptionsPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller, "3. Options", "Format, contract types, strikes and time range."
        )
        self.format = QtWidgets.QComboBox()
        self.format.setObjectName("formatCombo")
        for key, label in FORMATS:
            self.format.addItem(label, key)
        self.per_contract = QtWidgets.QCheckBox("One file per contract (in a folder)")
        self.partitioned = QtWidgets.QCheckBox("Parquet dataset partitioned by underlying/expiry")
        self.metadata = QtWidgets.QCheckBox(
            "Include metadata columns (underlying, expiry, strike, type, trading symbol, lot)"
        )
        self.types = {t: QtWidgets.QCheckBox(t) for t in ("CE", "PE", "FUT")}
        types_row = QtWidgets.QHBoxLayout()
        for cb in self.types.values():
            cb.setChecked(True)
            types_row.addWidget(cb)
        types_row.addStretch(1)
        self.strike_min = QtWidgets.QLineEdit()
        self.strike_max = QtWidgets.QLineEdit()
        for e in (self.strike_min, self.strike_max):
            e.setValidator(QtGui.QDoubleValidator(0.0, 1e9, 2))
            e.setPlaceholderText("any")
        strikes = QtWidgets.QHBoxLayout()
        strikes.addWidget(self.strike_min)
        strikes.addWidget(QtWidgets.QLabel("to"))
        strikes.addWidget(self.strike_max)
        self.range_all = QtWidgets.QRadioButton("&All data")
        self.range_last = QtWidgets.QRadioButton("&Last")
        self.range_dates = QtWidgets.QRadioButton("&From")
        self.range_all.setChecked(True)
        self.last_days = QtWidgets.QSpinBox()
        self.last_days.setRange(1, 3650)
        self.last_days.setValue(30)
        self.last_days.setSuffix(" days")
        self.date_from = QtWidgets.QDateEdit(QtCore.QDate.currentDate().addMonths(-3))
        self.date_to = QtWidgets.QDateEdit(QtCore.QDate.currentDate())
        for d in (self.date_from, self.date_to):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        rng = QtWidgets.QGridLayout()
        rng.addWidget(self.range_all, 0, 0)
        rng.addWidget(self.range_last, 1, 0)
        rng.addWidget(self.last_days, 1, 1)
        rng.addWidget(self.range_dates, 2, 0)
        rng.addWidget(self.date_from, 2, 1)
        rng.addWidget(QtWidgets.QLabel("to"), 2, 2)
        rng.addWidget(self.date_to, 2, 3)
        rng.setColumnStretch(4, 1)
        self.interval = QtWidgets.QComboBox()
        for iv in INTERVALS:
            self.interval.addItem(iv, iv)
        form = QtWidgets.QFormLayout(self)
        form.addRow("&Format:", self.format)
        form.addRow("", self.per_contract)
        form.addRow("", self.partitioned)
        form.addRow("", self.metadata)
        form.addRow("Contract types:", types_row)
        form.addRow("Strikes:", strikes)
        form.addRow("Time range:", rng)
        form.addRow("&Interval:", self.interval)
        form.addRow(self.message)
        for w in (
            *self.types.values(),
            self.per_contract,
            self.partitioned,
            self.range_all,
            self.range_last,
            self.range_dates,
        ):
            w.toggled.connect(self._changed)
        for e in (self.strike_min, self.strike_max):
            e.textChanged.connect(self._changed)
        self.format.currentIndexChanged.connect(self._changed)
        self.date_from.dateChanged.connect(self._changed)
        self.date_to.dateChanged.connect(self._changed)

    def _changed(self, *_: object) -> None:
        fmt = self.format.currentData()
        self.partitioned.setEnabled(fmt == "parquet")
        self.per_contract.setEnabled(fmt != "zip")
        self.show_problem()

    def options(self, underlyings: list[str], expiries: tuple[date, ...]) -> Any:
        def num(e: QtWidgets.QLineEdit) -> float | None:
            t = e.text().strip().replace(",", "")
            return float(t) if t else None

        last = self.last_days.value() if self.range_last.isChecked() else None
        dates = self.range_dates.isChecked()
        dfrom = qdate_to_date(self.date_from.date()) if dates else None
        dto = qdate_to_date(self.date_to.date()) if dates else None
        fmt = str(self.format.currentData())
        return ExportOptions(
            underlyings=tuple(underlyings),
            expiries=expiries,
            contract_types=tuple(t for t, cb in self.types.items() if cb.isChecked()),
            strike_min=num(self.strike_min),
            strike_max=num(self.strike_max),
            last_days=last,
            date_from=dfrom,
            date_to=dto,
            interval=str(self.interval.currentData()),
            include_metadata=self.metadata.isChecked(),
            per_contract=self.per_contract.isChecked() and fmt != "zip",
            format=fmt,  # type: ignore[arg-type]
            parquet_partitioned=self.partitioned.isChecked() and fmt == "parquet",
        )

    def problem(self) -> str | None:
        try:
            opts = self.options(["X|x"], (date.today(),))
            opts.validate()
        except ValueError as exc:
            return str(exc)
        except Exception as exc:
            return describe_error(exc)
        return None


class ExportReviewPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "4. Review and export",
            "Check what will be written, then choose where to save it.",
        )
        self.summary = QtWidgets.QLabel()
        self.summary.setObjectName("exportSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.sample = QtWidgets.QTableWidget()
        self.sample.setObjectName("exportSample")
        self.sample.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sample.verticalHeader().hide()
        self.sample.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.busy = BusyIndicator("Counting rows…")
        self.busy.hide()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("exportProgress")
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.btn_cancel = QtWidgets.QPushButton("&Cancel export")
        self.btn_cancel.hide()
        self.btn_open = QtWidgets.QPushButton("&Open folder")
        self.btn_open.hide()
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.btn_cancel)
        row.addWidget(self.btn_open)
        self.stack(self.busy, self.summary, self.sample, row, main=self.sample)
        self.preview: Any = None
        self._loading = False
        self.setFinalPage(True)
        self.setButtonText(QtWidgets.QWizard.WizardButton.FinishButton, "&Export…")

    def initializePage(self) -> None:
        super().initializePage()
        self.controller.schedule(self.load(), name="export-preview")

    async def load(self) -> None:
        wiz: ExportWizard = self.wizard()  # type: ignore[assignment]
        opts = wiz.current_options()
        self._loading = True
        self.preview = None
        self.refresh_complete()
        self.busy.show()
        self.message.clear_message()
        try:
            self.preview = await self.controller.exports.preview(opts)
        except Exception as exc:
            self.message.error(describe_error(exc))
            return
        finally:
            self._loading = False
            self.busy.hide()
            self.refresh_complete()
        p = self.preview
        span = (
            f"{ist_iso(p.first_ts)[:16]} → {ist_iso(p.last_ts)[:16]}"
            if p.first_ts is not None and p.last_ts is not None
            else "no candles in range"
        )
        self.summary.setText(
            f"<b>{p.rows:,}</b> rows from <b>{p.contracts:,}</b> contracts "
            f"({p.empty_contracts:,} without candles in the range) · {span}<br>"
            f"Format <b>{opts.format}</b>"
            + (", one file per contract" if opts.output_is_folder else ", one file")
            + (", with metadata columns" if opts.include_metadata else "")
        )
        head = list(CSV_COLUMNS)  # the sample rows are CSV rows; metadata columns not shown
        self.sample.clear()
        self.sample.setColumnCount(len(head))
        self.sample.setHorizontalHeaderLabels(head)
        self.sample.setRowCount(len(p.sample))
        for r, values in enumerate(p.sample):
            for c, v in enumerate(values[: len(head)]):
                self.sample.setItem(r, c, QtWidgets.QTableWidgetItem(str(v)))
        self.sample.resizeColumnsToContents()
        if p.rows == 0:
            self.message.error("No candles match this selection: change the options.")
            self.preview = None
            self.refresh_complete()

    def ready(self) -> bool:
        wiz = self.wizard()
        busy = wiz is not None and getattr(wiz, "exporting", False)
        return not self._loading and self.preview is not None and not busy


class ExportWizard(AppWizard):
    exportFinished = Signal(str)

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(controller, parent, name="exportWizard", title="Export")
        self.instruments_page = InstrumentsPage(controller)
        self.expiries_page = ExportExpiriesPage(controller)
        self.options_page = ExportOptionsPage(controller)
        self.review_page = ExportReviewPage(controller)
        self.add_pages(
            self.instruments_page, self.expiries_page, self.options_page, self.review_page
        )
        self.resize(820, 600)
        self.exporting = False
        self.done_path: Path | None = None
        self.result: Any = None
        self._cancel = threading.Event()
        self._latest: Any = None
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._show_progress)
        self.review_page.btn_cancel.clicked.connect(self.cancel_export)
        self.review_page.btn_open.clicked.connect(self._open_folder)
        self.presets = PresetBar(self)  # the last step: save these choices, or run a preset
        lay = self.review_page.layout()
        assert isinstance(lay, QtWidgets.QVBoxLayout)  # made by stack()
        lay.insertWidget(lay.count() - 1, self.presets)  # above the message line
        self._restore()
        controller.schedule(self._load_first(), name="export-instruments")

    async def _load_first(self) -> None:
        await self.instruments_page.load()
        last = stored_list(self.controller.services.qsettings(), "export/underlyings")
        if last and self.instruments_page.list.count() > 1:
            self.instruments_page.set_checked(last)

    def _restore(self) -> None:
        qs = self.controller.services.qsettings()
        fmt = qs.value("export/format")
        if fmt:
            i = self.options_page.format.findData(fmt)
            if i >= 0:
                self.options_page.format.setCurrentIndex(i)
        meta = qs.value("export/metadata")
        if meta is not None:
            self.options_page.metadata.setChecked(str(meta).lower() in ("1", "true"))

    def _save_choices(self, opts: Any, folder: Path) -> None:
        qs = self.controller.services.qsettings()
        qs.setValue("export/format", opts.format)
        qs.setValue("export/metadata", bool(opts.include_metadata))
        qs.setValue("export/underlyings", list(opts.underlyings))
        qs.setValue("export/last_dir", str(folder))
        qs.sync()

    def current_options(self) -> Any:
        return self.options_page.options(
            self.instruments_page.selected(), self.expiries_page.selected()
        )

    def validateCurrentPage(self) -> bool:
        if self.done_path is not None:
            return True  # after an export, Finish closes
        ok = super().validateCurrentPage()
        if ok and self.currentPage() is self.review_page:
            if not self.exporting:
                self.controller.schedule(self.choose_and_export(), name="export-run")
            return False
        return ok

    def start_folder(self) -> Path:
        return start_folder(self.controller.services)

    async def choose_and_export(self, out_path: Path | None = None, opts: Any = None) -> None:
        """Ask where (non-blocking save dialog), then export in a worker thread; ``opts``:
        a preset's options instead of the pages' choices."""
        opts = opts or self.current_options()
        name = default_filename(opts, datetime.now())
        folder = self.start_folder()
        overwrite = False
        if out_path is None:
            self.save_dialog = dlg = save_dialog(self, opts, folder, name)
            if not await run_dialog(dlg):
                return
            files = dlg.selectedFiles()
            if not files:
                return
            out_path = Path(files[0])
            overwrite = out_path.exists()  # the dialog asked to confirm replacing it
        await self.export_to(opts, out_path, overwrite=overwrite)

    async def export_to(
        self,
        opts: Any,
        out_path: Path,
        *,
        overwrite: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        page = self.review_page
        self.exporting = True
        self._cancel = cancel or threading.Event()
        self._latest = None
        page.refresh_complete()
        page.message.info(f"Exporting to {out_path} …")
        page.progress.setValue(0)
        page.progress.show()
        page.btn_cancel.show()
        page.btn_open.hide()
        self.button(QtWidgets.QWizard.WizardButton.BackButton).setEnabled(False)
        self.timer.start()
        try:
            result = await self.controller.exports.run(
                opts, out_path, overwrite=overwrite, progress=self._on_progress, cancel=self._cancel
            )
        except Exception as exc:
            name = type(exc).__name__
            msg = describe_error(exc)
            page.message.error(
                ("Export cancelled: " if "Cancel" in name else "Export failed: ") + msg
            )
            page.progress.hide()
            return
        finally:
            self.timer.stop()
            self.exporting = False
            page.btn_cancel.hide()
            self.button(QtWidgets.QWizard.WizardButton.BackButton).setEnabled(True)
            page.refresh_complete()
        self.result = result
        self.done_path = Path(result.path)
        self._save_choices(opts, self.done_path.parent)
        page.progress.setValue(1000)  # the bar ends full, with the final counts, not the last tick
        n = fmt_int(result.rows)
        page.progress.setFormat(f"done: {n}/{n} rows, {result.files} file(s)")
        self.button(QtWidgets.QWizard.WizardButton.CancelButton).hide()  # Close finishes now
        page.message.info(
            f"Done: {result.rows:,} rows, {result.files} file(s), {fmt_bytes(result.bytes)} — "
            f"{result.path}"
        )
        page.btn_open.show()
        page.setButtonText(QtWidgets.QWizard.WizardButton.FinishButton, "&Close")  # the page's own
        self.controller.exportsChanged.emit()
        self.exportFinished.emit(str(result.path))

    def _on_progress(self, p: Any) -> None:
        self._latest = p  # worker thread: only store; the timer shows it

    def _show_progress(self) -> None:
        p = self._latest
        if p is None:
            return
        self.review_page.progress.setValue(int(1000 * p.fraction))
        self.review_page.progress.setFormat(
            f"{p.phase}: {fmt_int(p.rows_done)}/{fmt_int(p.rows_total)} rows, "
            f"{p.contracts_done}/{p.contracts_total} contracts"
        )

    def cancel_export(self) -> None:
        self._cancel.set()

    def _open_folder(self) -> None:
        if self.done_path is not None:
            open_folder(self.done_path)

    def reject(self) -> None:
        if self.exporting:
            self._cancel.set()
        super().reject()
