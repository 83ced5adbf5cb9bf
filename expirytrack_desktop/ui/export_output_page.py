"""The export wizard's step 4: CSV columns and their order, compression, and where it goes:
a file or folder here (or a Historify database), S3-compatible storage, or a Parquet mirror.
Everything the CLI's ``--columns``, ``--compression[-level]``, ``--out s3://…`` and
``--mirror`` do; the clean-up of old exports opens from here too."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.export.errors import ExportError
from expirytrack_desktop.export.options import (
    COMPRESSIONS,
    LEVELS,
    ExportOptions,
    default_csv_columns,
)
from expirytrack_desktop.export.s3 import is_s3_url, parse_s3_url
from expirytrack_desktop.ui.export_cleanup import CleanupDialog
from expirytrack_desktop.ui.export_columns import ColumnList
from expirytrack_desktop.ui.qt import QtWidgets
from expirytrack_desktop.ui.wizard_common import WizardPage

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

LOCAL, S3, MIRROR = "local", "s3", "mirror"


class ExportOutputPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "4. Columns and output",
            "CSV columns and their order, compression, and where the export goes.",
        )
        self.columns = ColumnList()
        self.columns_box = QtWidgets.QGroupBox("CSV columns, in the order written (CSV and ZIP)")
        QtWidgets.QVBoxLayout(self.columns_box).addWidget(self.columns)
        self.codec = QtWidgets.QComboBox()
        self.codec.setObjectName("exportCodec")
        self.level = QtWidgets.QSpinBox()
        self.level.setObjectName("exportLevel")
        self.level.setSpecialValueText("default")
        comp = QtWidgets.QHBoxLayout()
        comp.addWidget(self.codec)
        comp.addWidget(QtWidgets.QLabel("level"))
        comp.addWidget(self.level)
        comp.addStretch(1)
        self.dest_local = QtWidgets.QRadioButton("A file or folder on this computer (asked next)")
        self.dest_local.setChecked(True)
        self.historify_db = QtWidgets.QCheckBox(
            "Load into a Historify database (historify.duckdb) instead of files"
        )
        self.dest_s3 = QtWidgets.QRadioButton("S3-compatible storage:")
        self.s3_url = QtWidgets.QLineEdit()
        self.s3_url.setObjectName("exportS3Url")
        self.s3_url.setPlaceholderText("s3://bucket/prefix/")
        self.s3_overwrite = QtWidgets.QCheckBox("Replace an existing object")
        self.dest_mirror = QtWidgets.QRadioButton("Parquet mirror folder (kept in step):")
        self.mirror_dir = QtWidgets.QLineEdit()
        self.mirror_dir.setObjectName("exportMirrorDir")
        self.btn_browse = QtWidgets.QPushButton("&Browse…")
        self.btn_browse.clicked.connect(self._browse)
        self.btn_clean = QtWidgets.QPushButton("Clean up old e&xports…")
        self.btn_clean.clicked.connect(self.open_cleanup)
        dest = QtWidgets.QGridLayout()
        dest.addWidget(self.dest_local, 0, 0, 1, 3)
        dest.addWidget(self.historify_db, 1, 0, 1, 3)
        dest.addWidget(self.dest_s3, 2, 0)
        dest.addWidget(self.s3_url, 2, 1)
        dest.addWidget(self.s3_overwrite, 2, 2)
        dest.addWidget(self.dest_mirror, 3, 0)
        dest.addWidget(self.mirror_dir, 3, 1)
        dest.addWidget(self.btn_browse, 3, 2)
        dest.setColumnStretch(1, 1)
        note = QtWidgets.QLabel(
            "S3 key and endpoint: Settings → Cloud and e-mail (or `expirytrack s3 configure`),"
            " else the AWS environment or profile. A mirror rewrites only new or changed"
            " partitions."
        )
        note.setWordWrap(True)
        note.setEnabled(False)
        form = QtWidgets.QFormLayout(self)
        form.addRow(self.columns_box)
        form.addRow("Compression:", comp)
        form.addRow("Destination:", dest)
        form.addRow("", note)
        clean = QtWidgets.QHBoxLayout()
        clean.addWidget(self.btn_clean)
        clean.addStretch(1)
        form.addRow("Old exports:", clean)
        form.addRow(self.message)
        self.columns.changed.connect(self.show_problem)
        self.codec.currentIndexChanged.connect(self._codec_changed)
        self.level.valueChanged.connect(self.show_problem)
        for w in (self.dest_local, self.dest_s3, self.dest_mirror, self.historify_db):
            w.toggled.connect(self._dest_changed)
        for e in (self.s3_url, self.mirror_dir):
            e.textChanged.connect(self.show_problem)
        self.format = "csv"
        self.cleanup: CleanupDialog | None = None

    def initializePage(self) -> None:
        wiz: Any = self.wizard()
        self.set_format(str(wiz.options_page.format.currentData()))
        self.columns.reset(wiz.options_page.metadata.isChecked())
        super().initializePage()

    def cleanupPage(self) -> None:
        pass  # keep the choices when going back

    def set_format(self, fmt: str) -> None:
        """Offer the compressions of ``fmt`` (keeping the one chosen when it still applies)."""
        self.format = fmt
        current = self.codec.currentData()
        self.codec.blockSignals(True)
        self.codec.clear()
        for name in COMPRESSIONS.get(fmt, ("none",)):
            self.codec.addItem(name, name)
        i = self.codec.findData(current)
        self.codec.setCurrentIndex(max(i, 0))
        self.codec.setEnabled(fmt in COMPRESSIONS)
        self.codec.blockSignals(False)
        self.columns_box.setEnabled(fmt in ("csv", "zip"))
        self._codec_changed()
        self._dest_changed()

    def _codec_changed(self, *_: object) -> None:
        lo, hi = LEVELS.get(str(self.codec.currentData()), (0, 0))
        self.level.setRange(lo - 1, hi)  # the lowest is "default"
        self.level.setEnabled(hi > 0)
        self.show_problem()

    def _dest_changed(self, *_: object) -> None:
        self.historify_db.setVisible(self.format == "historify")
        self.historify_db.setEnabled(self.dest_local.isChecked())
        self.s3_url.setEnabled(self.dest_s3.isChecked())
        self.s3_overwrite.setEnabled(self.dest_s3.isChecked())
        self.mirror_dir.setEnabled(self.dest_mirror.isChecked())
        self.btn_browse.setEnabled(self.dest_mirror.isChecked())
        self.show_problem()

    def _browse(self) -> None:
        dlg = QtWidgets.QFileDialog(self, "Parquet mirror folder")
        dlg.setObjectName("exportMirrorDialog")
        dlg.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
        dlg.fileSelected.connect(self.mirror_dir.setText)
        self.mirror_dialog = dlg
        dlg.open()

    def open_cleanup(self) -> None:
        if self.cleanup is None:
            self.cleanup = CleanupDialog(self.controller, self)
        self.cleanup.show()

    def set_options(self, o: ExportOptions, out: str | None) -> None:
        """Show a preset's columns, compression and (an S3 output) destination."""
        self.set_format(o.format)
        if o.csv_columns is not None:
            self.columns.set_columns(o.csv_columns)
            self.columns.customized = True
        else:
            self.columns.reset(o.include_metadata, force=True)
        if o.compression is not None:
            self.codec.setCurrentIndex(max(self.codec.findData(o.compression), 0))
        lvl = o.compression_level
        self.level.setValue(self.level.minimum() if lvl is None else lvl)
        if is_s3_url(out):
            self.dest_s3.setChecked(True)
            self.s3_url.setText(str(out))
        else:
            self.dest_local.setChecked(True)

    # ---- what the wizard reads ---------------------------------------------------------

    def destination(self) -> tuple[str, str]:
        """(LOCAL | S3 | MIRROR, the URL or folder typed; "" for LOCAL)."""
        if self.dest_s3.isChecked():
            return S3, self.s3_url.text().strip()
        if self.dest_mirror.isChecked():
            return MIRROR, self.mirror_dir.text().strip()
        return LOCAL, ""

    def to_historify_db(self, opts: ExportOptions) -> bool:
        return opts.format == "historify" and self.historify_db.isChecked()

    def apply(self, opts: ExportOptions) -> ExportOptions:
        """Step 3's options with this page's columns and compression."""
        codec = str(self.codec.currentData() or "none")
        level = self.level.value() if self.level.isEnabled() else self.level.minimum()
        changes: dict[str, Any] = {
            "compression": codec if opts.format in COMPRESSIONS else None,
            "compression_level": level if level > self.level.minimum() else None,
        }
        if opts.format in ("csv", "zip"):
            chosen = self.columns.checked()
            if chosen != default_csv_columns(opts.include_metadata):
                changes.update(csv_columns=chosen, include_metadata=False)
        return replace(opts, **changes)

    def problem(self) -> str | None:
        wiz: Any = self.wizard()
        if wiz is None:
            return None
        try:
            wiz.current_options(probe=True).validate()
            kind, where = self.destination()
            if kind == S3:
                if not is_s3_url(where):
                    return "Type an S3 location: s3://bucket/prefix/"
                parse_s3_url(where)
            if kind == MIRROR and not where:
                return "Choose the mirror's folder."
        except ExportError as exc:
            return str(exc)
        return None

    def describe(self, opts: ExportOptions) -> str:
        """One line for the review: format, columns, compression, destination."""
        kind, where = self.destination()
        if kind == MIRROR:
            return f"Parquet mirror <b>{where}</b>: only new or changed partitions are rewritten"
        parts = [f"Format <b>{opts.format}</b>"]
        parts.append("one file per contract" if opts.output_is_folder else "one file")
        if opts.format in ("csv", "zip"):
            parts.append("columns " + ", ".join(opts.columns_in_force))
        if opts.codec != "none" and opts.format in COMPRESSIONS:
            level = "" if opts.compression_level is None else f" level {opts.compression_level}"
            parts.append(f"{opts.codec}{level}")
        if kind == S3:
            parts.append(f"uploaded to <b>{where}</b>")
        elif self.to_historify_db(opts):
            parts.append("loaded into a Historify database")
        return ", ".join(parts)
