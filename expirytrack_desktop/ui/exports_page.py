"""Exports page: the export history (what, when, where, rows, size), kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.collect import display_name
from expirytrack_desktop.ui.models import RecordsModel, RowRole, fmt_bytes, fmt_int, short_ts
from expirytrack_desktop.ui.qt import QtCore, QtGui, QtWidgets
from expirytrack_desktop.ui.widgets import rows_table

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller


def describe_selection(sel: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """An export's selection in a few words: 'NIFTY · 3 expiries · CE/PE' (``names``:
    trading symbols by key, so a stock reads 'RELIANCE', not its ISIN key)."""
    unds = ", ".join(display_name(u, names) for u in sel.get("underlyings", []))
    exp = sel.get("expiries")
    exp_text = "all expiries" if exp is None else f"{len(exp)} expiries"
    types = "/".join(sel.get("contract_types") or [])
    return f"{unds} · {exp_text}" + (f" · {types}" if types else "")


def open_folder(path: Path) -> bool:
    """Show ``path``'s folder in the system file manager."""
    folder = path if path.is_dir() else path.parent
    return QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(folder)))


class ExportsPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("exportsPage")
        self.model = RecordsModel(
            [
                ("created_at", "When"),
                ("what", "What"),
                ("format", "Format"),
                ("rows", "Rows"),
                ("bytes", "Size"),
                ("path", "Where"),
            ],
            {"created_at": short_ts, "rows": fmt_int, "bytes": fmt_bytes},
            self,
        )
        self.table = rows_table(self.model, "exportHistory")
        self.table.doubleClicked.connect(self._open_selected)
        self.btn_export = QtWidgets.QPushButton("&Export…")
        self.btn_open = QtWidgets.QPushButton("&Open folder")
        self.btn_open.clicked.connect(self._open_selected)
        self.btn_export.clicked.connect(lambda: self.window().on_export())  # type: ignore[attr-defined]
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.btn_export)
        row.addWidget(self.btn_open)
        row.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.table)

    def schedule_refresh(self) -> None:
        self.controller.schedule(self.refresh(), name="exports-refresh")

    async def refresh(self) -> None:
        entries = await self.controller.exports.history()
        keys = sorted({u for e in entries for u in e.selection.get("underlyings", [])})
        names = await self.controller.exports.underlying_names(keys)
        self.model.set_rows(
            [
                {
                    "created_at": e.created_at,
                    "what": describe_selection(e.selection, names),
                    "format": e.format,
                    "rows": e.rows,
                    "bytes": e.bytes,
                    "path": e.path,
                }
                for e in entries
            ]
        )
        self.table.resizeColumnsToContents()

    def _open_selected(self, *_: object) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            rec = rows[0].data(RowRole)
            if rec and rec.get("path"):
                open_folder(Path(rec["path"]))
