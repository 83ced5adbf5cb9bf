"""The export wizard's last step: what will be written (counts, a sample), progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from expirytrack_desktop.timeutil import ist_iso
from expirytrack_desktop.ui.qt import Qt, QtWidgets
from expirytrack_desktop.ui.widgets import BusyIndicator
from expirytrack_desktop.ui.wizard_common import WizardPage

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller


class ExportReviewPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "5. Review and export",
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
        self.setFinalPage(True)
        self.setButtonText(QtWidgets.QWizard.WizardButton.FinishButton, "&Export…")

    def initializePage(self) -> None:
        super().initializePage()
        wiz: Any = self.wizard()
        if not wiz.finished_ok:  # what Finish does: the save dialog, an upload, the mirror
            kind = wiz.output_page.destination()[0]
            text = {"s3": "&Upload", "mirror": "&Update mirror"}.get(kind, "&Export…")
            self.setButtonText(QtWidgets.QWizard.WizardButton.FinishButton, text)
        self.controller.schedule(self.load(), name="export-preview")

    async def load(self) -> None:
        wiz: Any = self.wizard()
        opts = wiz.current_options()
        self.preview = None
        self.message.clear_message()
        self.preview = await self.while_busy(self.busy, self.controller.exports.preview(opts))
        self.refresh_complete()  # ready() looks at the preview, set only now
        p = self.preview
        if p is None:
            return
        span = (
            f"{ist_iso(p.first_ts)[:16]} → {ist_iso(p.last_ts)[:16]}"
            if p.first_ts is not None and p.last_ts is not None
            else "no candles in range"
        )
        self.summary.setText(
            f"<b>{p.rows:,}</b> rows from <b>{p.contracts:,}</b> contracts "
            f"({p.empty_contracts:,} without candles in the range) · {span}<br>"
            + wiz.output_page.describe(opts)
        )
        # the sample rows are in the export's own columns (query.preview)
        shown = list(p.sample_columns)
        self.sample.clear()
        self.sample.setColumnCount(len(shown))
        self.sample.setHorizontalHeaderLabels(shown)
        self.sample.setRowCount(len(p.sample))
        for r, values in enumerate(p.sample):
            for c, value in enumerate(values):
                text = "" if value is None else str(value)
                self.sample.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        self.sample.resizeColumnsToContents()
        if p.rows == 0:
            self.message.error("No candles match this selection: change the options.")
            self.preview = None
            self.refresh_complete()

    def ready(self) -> bool:
        wiz = self.wizard()
        busy = wiz is not None and getattr(wiz, "exporting", False)
        return not self.is_loading() and self.preview is not None and not busy
