"""The 5-step export wizard: instruments → expiries (with counts) → options → columns and
output → review/export. The steps live in export_pick_pages, export_options_page,
export_output_page and export_review; this module runs the export.

All reads and the export itself run in worker threads (the export engine is blocking);
progress crosses back as the latest value, read by a timer, and Cancel sets the engine's
cancel event. The save dialog is opened non-blocking (``open()``), never ``exec()``.
Step 4 sends the export to a file or folder here (the save dialog), a Historify database,
S3-compatible storage or a Parquet mirror, like the CLI's ``--out`` / ``--mirror``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.export.api import default_filename
from expirytrack_desktop.export.errors import InvalidOptionsError
from expirytrack_desktop.export.options import options_for_name
from expirytrack_desktop.ui.dialogs import run_dialog
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.export_options_page import ExportOptionsPage
from expirytrack_desktop.ui.export_output_page import MIRROR, S3, ExportOutputPage
from expirytrack_desktop.ui.export_pick_pages import ExportExpiriesPage, InstrumentsPage
from expirytrack_desktop.ui.export_presets import PresetBar
from expirytrack_desktop.ui.export_review import ExportReviewPage
from expirytrack_desktop.ui.export_save import save_dialog, start_folder
from expirytrack_desktop.ui.exports_page import open_folder
from expirytrack_desktop.ui.models import fmt_bytes, fmt_int
from expirytrack_desktop.ui.qt import QtCore, QtWidgets, Signal
from expirytrack_desktop.ui.wizard_common import AppWizard, stored_list

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)
WB = QtWidgets.QWizard.WizardButton
Work = Callable[[Callable[[Any], None], threading.Event], Awaitable[Any]]


class ExportWizard(AppWizard):
    exportFinished = Signal(str)

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(controller, parent, name="exportWizard", title="Export")
        self.instruments_page = InstrumentsPage(controller)
        self.expiries_page = ExportExpiriesPage(controller)
        self.options_page = ExportOptionsPage(controller)
        self.output_page = ExportOutputPage(controller)
        self.review_page = ExportReviewPage(controller)
        self.add_pages(
            self.instruments_page,
            self.expiries_page,
            self.options_page,
            self.output_page,
            self.review_page,
        )
        self.resize(820, 640)
        self.exporting = False
        self.done_path: Path | None = None  # what "Open folder" shows (None: nothing local)
        self.finished_ok = False
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

    def _save_choices(self, opts: Any, folder: Path | None) -> None:
        qs = self.controller.services.qsettings()
        qs.setValue("export/format", opts.format)
        qs.setValue("export/metadata", bool(opts.include_metadata))
        qs.setValue("export/underlyings", list(opts.underlyings))
        if folder is not None:
            qs.setValue("export/last_dir", str(folder))
        qs.sync()

    def current_options(self, *, probe: bool = False) -> Any:
        """The choices of steps 1-4 as ExportOptions; ``probe``: placeholders for an empty
        selection (to check the other options before anything is selected)."""
        keys = self.instruments_page.selected()
        expiries = self.expiries_page.selected()
        if probe:
            keys, expiries = keys or ["X|x"], expiries or (date.today(),)
        return self.output_page.apply(self.options_page.options(keys, expiries))

    def load_choices(self, opts: Any, out: str | None) -> None:
        """Put a preset's choices into every step and go back to step 1 to check them."""
        self.instruments_page.set_checked(list(opts.underlyings))
        self.expiries_page.want(opts.expiries)
        self.options_page.set_options(opts)
        self.output_page.set_options(opts, out)
        self.finished_ok, self.done_path = False, None
        self.review_page.setButtonText(WB.FinishButton, "&Export…")
        self.restart()

    def validateCurrentPage(self) -> bool:
        if self.finished_ok:
            return True  # after an export, Finish closes
        ok = super().validateCurrentPage()
        if ok and self.currentPage() is self.review_page:
            if not self.exporting:
                self.controller.schedule(self.export_chosen(), name="export-run")
            return False
        return ok

    def start_folder(self) -> Path:
        return start_folder(self.controller.services)

    async def export_chosen(self) -> None:
        """Export where step 4 says: S3, a mirror, or here (through the save dialog)."""
        kind, where = self.output_page.destination()
        opts = self.current_options()
        if kind == S3:
            await self.export_s3(opts, where, overwrite=self.output_page.s3_overwrite.isChecked())
        elif kind == MIRROR:
            await self.update_mirror(opts, Path(where).expanduser())
        else:
            await self.choose_and_export(opts=opts)

    async def choose_and_export(
        self, out_path: Path | None = None, opts: Any = None, *, historify_db: bool | None = None
    ) -> None:
        """Ask where (non-blocking save dialog), then export in a worker thread; ``opts``:
        a preset's options instead of the pages' choices."""
        opts = opts or self.current_options()
        if historify_db is None:
            historify_db = self.output_page.to_historify_db(opts)
        name = "historify.duckdb" if historify_db else default_filename(opts, datetime.now())
        folder = self.start_folder()
        overwrite = False
        if out_path is None:
            self.save_dialog = dlg = save_dialog(self, opts, folder, name, database=historify_db)
            if not await run_dialog(dlg):
                return
            files = dlg.selectedFiles()
            if not files:
                return
            out_path = Path(files[0])
            overwrite = out_path.exists()  # the dialog asked to confirm replacing it
        try:  # CSV text typed in as "x.parquet" cannot be read by the readers that go by names
            options_for_name(opts, out_path.name, format_chosen=True, compression_chosen=True)
        except InvalidOptionsError as exc:
            self.review_page.message.error(f"Not exported: {exc}")
            return
        await self.export_to(opts, out_path, overwrite=overwrite)

    async def export_to(
        self,
        opts: Any,
        out_path: Path,
        *,
        overwrite: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        async def work(progress: Callable[[Any], None], stop: threading.Event) -> Any:
            return await self.controller.exports.run(
                opts, out_path, overwrite=overwrite, progress=progress, cancel=stop
            )

        result = await self._running(f"Exporting to {out_path} …", work, cancel)
        if result is None:
            return
        self.result = result
        self._finished(opts, Path(result.path), result.rows, result.files, result.bytes,
                       str(result.path))  # fmt: skip

    async def export_s3(self, opts: Any, url: str, *, overwrite: bool = False) -> None:
        """Export into a temporary folder and upload it to ``url`` (``s3://bucket/prefix/``)."""
        name = default_filename(opts, datetime.now())
        if not self.controller.services.demo:  # the stored S3 key may be in a locked file
            await self.controller.auth.ensure_unlocked()  # declined: the AWS chain, warned

        async def work(progress: Callable[[Any], None], stop: threading.Event) -> Any:
            return await self.controller.exports.run_s3(
                opts, url, name, overwrite=overwrite, progress=progress, cancel=stop
            )

        out = await self._running(f"Exporting to {url} …", work)
        if out is None:
            return
        result, where, count = out
        self.result = result
        self._finished(opts, None, result.rows, count, result.bytes, where)

    async def update_mirror(self, opts: Any, folder: Path) -> None:
        """Bring the Parquet mirror at ``folder`` in step with this selection."""

        async def work(progress: Callable[[Any], None], stop: threading.Event) -> Any:
            return await self.controller.exports.mirror(
                opts, folder, progress=progress, cancel=stop
            )

        r = await self._running(f"Updating the mirror {folder} …", work)
        if r is None:
            return
        self.result = r
        self._finished(opts, folder, r.rows, len(r.written), None, str(folder))
        self.review_page.message.info(
            f"Mirror {folder}: {len(r.written)} partition(s) written ({r.rows:,} rows), "
            f"{r.unchanged} unchanged, {len(r.removed)} removed"
        )

    async def _running(self, what: str, work: Work, cancel: threading.Event | None = None) -> Any:
        """Run ``work`` with the progress bar and Cancel shown; None when it failed (the
        message says why) or was cancelled."""
        page = self.review_page
        self.exporting = True
        self._cancel = cancel or threading.Event()
        self._latest = None
        page.refresh_complete()
        page.message.info(what)
        page.progress.setValue(0)
        page.progress.show()
        page.btn_cancel.show()
        page.btn_open.hide()
        self.button(WB.BackButton).setEnabled(False)
        self.timer.start()
        try:
            return await work(self._on_progress, self._cancel)
        except Exception as exc:
            name = type(exc).__name__
            msg = describe_error(exc)
            page.message.error(
                ("Export cancelled: " if "Cancel" in name else "Export failed: ") + msg
            )
            page.progress.hide()
            return None
        finally:
            self.timer.stop()
            self.exporting = False
            page.btn_cancel.hide()
            self.button(WB.BackButton).setEnabled(True)
            page.refresh_complete()

    def _finished(
        self, opts: Any, path: Path | None, rows: int, files: int, nbytes: int | None, where: str
    ) -> None:
        page = self.review_page
        self.done_path = path
        self.finished_ok = True
        self._save_choices(opts, path.parent if path is not None and path.is_file() else None)
        page.progress.setValue(1000)  # the bar ends full, with the final counts, not the last tick
        n = fmt_int(rows)
        page.progress.setFormat(f"done: {n}/{n} rows, {files} file(s)")
        self.button(WB.CancelButton).hide()  # Close finishes now
        size = "" if nbytes is None else f", {fmt_bytes(nbytes)}"
        page.message.info(f"Done: {rows:,} rows, {files} file(s){size} — {where}")
        page.btn_open.setVisible(path is not None)
        page.setButtonText(WB.FinishButton, "&Close")  # the page's own
        self.controller.exportsChanged.emit()
        self.exportFinished.emit(where)

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
