"""The Jobs page: persisted collection jobs with live progress, controls and a detail log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.jobs_service import JobLog
from expirytrack_desktop.ui.models import JobRow, JobsModel, RowRole
from expirytrack_desktop.ui.qt import Qt, QtCore, QtWidgets, asyncSlot
from expirytrack_desktop.ui.widgets import ProgressBarDelegate, rows_table

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)

REPAINT_HZ = 8  # live progress repaints per second (the engine may report far more often)


def log_lines(row: JobRow | None, job_log: JobLog) -> list[str]:
    """The job's summary line, its log entries, the live step and the last error."""
    lines = [f"{at} {level:<7} {msg}" for at, level, msg in job_log.entries]
    if job_log.live is not None:
        lines.append(f"(live) {job_log.live.phase}: {job_log.live.current}")
    if row is not None:
        lines.insert(
            0,
            f"Job {row.id} ({row.underlyings}; expiries {row.expiries}): {row.status} — "
            f"{row.done + row.failed}/{row.total} items, {row.failed} failed, "
            f"{row.requests:,} requests, {row.candles:,} candles; started "
            f"{row.started_at or '–'}, finished {row.completed_at or '–'} (UTC)",
        )
        if row.error:
            lines.append(f"Last error: {row.error}")
    return lines


class JobsPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.jobs_model
        self.setObjectName("jobsPage")

        self.table = rows_table(self.model, "jobsTable")
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setItemDelegateForColumn(JobsModel.PROGRESS_COLUMN, ProgressBarDelegate(self))
        hh = self.table.horizontalHeader()
        hh.setStretchLastSection(False)
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        widths = (36, 100, 140, 230, 150, 72, 90, 60, 62, 50, 118, 118)
        for i, w in enumerate(widths):
            self.table.setColumnWidth(i, w)
        # the status takes what the others leave: the whole row fits at 1280 px, no scrolling
        hh.setSectionResizeMode(3, QtWidgets.QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(36)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

        self.btn_cancel = QtWidgets.QPushButton("&Cancel")
        self.btn_pause = QtWidgets.QPushButton("&Pause")
        self.btn_resume = QtWidgets.QPushButton("Res&ume")
        self.btn_retry = QtWidgets.QPushButton("Retry &failed")
        self.btn_cancel.setObjectName("cancelButton")
        self.btn_pause.setObjectName("pauseButton")
        self.btn_resume.setObjectName("resumeButton")
        self.btn_retry.setObjectName("retryButton")
        self.btn_cancel.setToolTip("Stop the selected job; what was fetched is kept")
        self.btn_pause.setToolTip("Pause the selected job after the requests in flight")
        self.btn_resume.setToolTip("Continue the selected job (plans again what is missing)")
        self.btn_retry.setToolTip("Fetch again the items of the selected job that failed")
        self.btn_cancel.clicked.connect(self.on_cancel)
        self.btn_pause.clicked.connect(self.on_pause)
        self.btn_resume.clicked.connect(self.on_resume)
        self.btn_retry.clicked.connect(self.on_retry)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.btn_pause, self.btn_resume, self.btn_cancel, self.btn_retry):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.lbl_empty = QtWidgets.QLabel(
            "No collections yet. Use <b>New Collection…</b> (Ctrl+N) to choose what to collect."
        )
        buttons.addWidget(self.lbl_empty)

        self.detail = QtWidgets.QPlainTextEdit()
        self.detail.setObjectName("jobDetail")
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select a job to see its log.")
        self.detail_title = QtWidgets.QLabel("Job log")
        detail_box = QtWidgets.QWidget()
        dl = QtWidgets.QVBoxLayout(detail_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.detail_title)
        dl.addWidget(self.detail)

        top = QtWidgets.QWidget()
        tl = QtWidgets.QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(buttons)
        tl.addWidget(self.table)
        self.splitter = QtWidgets.QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(detail_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.splitter)

        self.repaint_timer = QtCore.QTimer(self)
        self.repaint_timer.setInterval(1000 // REPAINT_HZ)
        self.repaint_timer.timeout.connect(self._tick)
        self.repaint_timer.start()
        self.model.modelReset.connect(self._update_buttons)
        self.model.dataChanged.connect(self._on_data_changed)
        self.model.rowsInserted.connect(self._update_buttons)
        controller.jobLogChanged.connect(self._on_job_log_changed)
        self._shown_log_job: int | None = None
        self._ticks = 0
        self._update_buttons()
        self.schedule_refresh()

    # --- data ----------------------------------------------------------------------------
    def schedule_refresh(self) -> None:
        self.controller.schedule(self.refresh(), name="jobs-refresh")

    async def refresh(self) -> None:
        await self.controller.jobs.reload()
        self._update_buttons()

    def _tick(self) -> None:
        self.model.flush()
        self._ticks += 1
        job = self._shown_log_job
        # the detail of a running job is refreshed every 2 s
        if (
            self._ticks % (2 * REPAINT_HZ) == 0
            and job is not None
            and self.controller.jobs.is_running(job)
        ):
            self.controller.schedule(self._load_log(job), name="job-log")

    def _on_data_changed(self, *_: object) -> None:
        self._update_buttons()

    def selected_job(self) -> JobRow | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].data(RowRole)
        return row if isinstance(row, JobRow) else None

    def select_job(self, job_id: int) -> None:
        i = self.model.row_of(job_id)
        if i >= 0:
            self.table.selectRow(i)

    def _on_selection(self, *_: object) -> None:
        self._update_buttons()
        job = self.selected_job()
        if job is None:
            self._shown_log_job = None
            self.detail.clear()
            self.detail_title.setText("Job log")
            return
        self.detail_title.setText(f"Job {job.id} log — {job.underlyings}")
        self._shown_log_job = job.id
        self.controller.schedule(self._load_log(job.id), name="job-log")

    async def _load_log(self, job_id: int) -> None:
        job_log = await self.controller.jobs.log(job_id)
        if self._shown_log_job != job_id:
            return
        self.detail.setPlainText("\n".join(log_lines(self.model.job(job_id), job_log)))
        bar = self.detail.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_job_log_changed(self, job_id: int) -> None:
        if job_id == self._shown_log_job:
            self.controller.schedule(self._load_log(job_id), name="job-log")

    def _update_buttons(self, *_: object) -> None:
        job = self.selected_job()
        self.lbl_empty.setVisible(self.model.rowCount() == 0)
        c = self.controller
        running = job is not None and c.jobs.is_running(job.id)
        self.btn_cancel.setEnabled(
            job is not None
            and (running or job.status in ("paused", "needs_login", "interrupted", "pending"))
        )
        self.btn_pause.setEnabled(running and job is not None and job.status == "running")
        self.btn_resume.setEnabled(
            job is not None
            and (job.resumable or job.status == "paused")
            and not (running and job.status == "running")
        )
        self.btn_retry.setEnabled(job is not None and job.failed > 0 and not running)

    # --- controls --------------------------------------------------------------------------
    @asyncSlot()
    async def on_cancel(self) -> None:
        job = self.selected_job()
        if job is not None:
            await self.controller.jobs.cancel(job.id)
            self._update_buttons()

    @asyncSlot()
    async def on_pause(self) -> None:
        job = self.selected_job()
        if job is not None:
            await self.controller.jobs.pause(job.id)
            self._update_buttons()

    @asyncSlot()
    async def on_resume(self) -> None:
        job = self.selected_job()
        if job is not None:
            await self.controller.jobs.resume(job.id)
            self._update_buttons()

    @asyncSlot()
    async def on_retry(self) -> None:
        job = self.selected_job()
        if job is not None:
            await self.controller.jobs.retry(job.id)
            self._update_buttons()
