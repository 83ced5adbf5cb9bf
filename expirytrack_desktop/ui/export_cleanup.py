"""Clean up old exports from the window (the CLI's ``--clean-older-than`` /
``--clean-max-size``): first a list of what would go, then Remove. Only exports in the
history that still hold the bytes the app wrote are candidates (export/cleanup.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from expirytrack_desktop.export.cleanup import parse_size
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.models import fmt_bytes
from expirytrack_desktop.ui.qt import QtWidgets
from expirytrack_desktop.ui.widgets import MessageLabel

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller


class CleanupDialog(QtWidgets.QDialog):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportCleanupDialog")
        self.setWindowTitle("Clean up old exports")
        self.controller = controller
        self.by_age = QtWidgets.QCheckBox("Older than")
        self.by_age.setChecked(True)
        self.days = QtWidgets.QSpinBox()
        self.days.setRange(0, 3650)
        self.days.setValue(30)
        self.days.setSuffix(" days")
        self.by_size = QtWidgets.QCheckBox("Oldest first, until the rest total at most")
        self.max_size = QtWidgets.QLineEdit("5G")
        self.max_size.setObjectName("cleanupSize")
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("cleanupList")
        self.message = MessageLabel()
        self.btn_preview = QtWidgets.QPushButton("&List them")
        self.btn_remove = QtWidgets.QPushButton("&Remove")
        self.btn_remove.setEnabled(False)
        self.btn_close = QtWidgets.QPushButton("Close")
        self.btn_preview.clicked.connect(
            lambda: controller.schedule(self.run(dry_run=True), name="export-cleanup-list")
        )
        self.btn_remove.clicked.connect(
            lambda: controller.schedule(self.run(dry_run=False), name="export-cleanup")
        )
        self.btn_close.clicked.connect(self.close)
        for w in (self.by_age, self.by_size):
            w.toggled.connect(self._changed)
        self.days.valueChanged.connect(self._changed)
        self.max_size.textChanged.connect(self._changed)
        grid = QtWidgets.QGridLayout()
        grid.addWidget(self.by_age, 0, 0)
        grid.addWidget(self.days, 0, 1)
        grid.addWidget(self.by_size, 1, 0)
        grid.addWidget(self.max_size, 1, 1)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.btn_preview)
        buttons.addWidget(self.btn_remove)
        buttons.addStretch(1)
        buttons.addWidget(self.btn_close)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel(
            "Only exports this app wrote and that are unchanged since are removed."
        ))  # fmt: skip
        lay.addLayout(grid)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.message)
        lay.addLayout(buttons)
        self.resize(560, 380)

    def _changed(self, *_: object) -> None:
        self.btn_remove.setEnabled(False)  # list again before removing

    def limits(self) -> tuple[float | None, int | None]:
        days = float(self.days.value()) if self.by_age.isChecked() else None
        size = parse_size(self.max_size.text()) if self.by_size.isChecked() else None
        return days, size

    async def run(self, *, dry_run: bool) -> None:
        self.message.clear_message()
        try:
            days, size = self.limits()
            result: Any = await self.controller.exports.clean(days, size, dry_run=dry_run)
        except Exception as exc:
            self.message.error(describe_error(exc))
            return
        self.list.clear()
        for r in result.removed:
            self.list.addItem(
                f"{r.path}  ({fmt_bytes(r.bytes)}, {r.created_at:%Y-%m-%d %H:%M} UTC)"
            )
        for path in result.kept_changed:
            self.list.addItem(f"kept (changed since it was exported): {path}")
        verb = "Would remove" if dry_run else "Removed"
        self.message.info(f"{verb} {len(result.removed)} export(s), {fmt_bytes(result.freed)}.")
        self.btn_remove.setEnabled(dry_run and bool(result.removed))
        if not dry_run:
            self.controller.exportsChanged.emit()
