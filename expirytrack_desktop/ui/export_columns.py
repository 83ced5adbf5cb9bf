"""The CSV column list of the export wizard: every column the CLI's ``--columns`` knows, each
checked or not, in the order they will be written (drag, or Up / Down)."""

from __future__ import annotations

from expirytrack_desktop.export.options import ALL_CSV_COLUMNS, CsvColumns, default_csv_columns
from expirytrack_desktop.ui.qt import Qt, QtWidgets, Signal
from expirytrack_desktop.ui.wizard_common import check_state


class ColumnList(QtWidgets.QWidget):
    """``[x] openalgo_symbol`` … in write order, with Up / Down / Default beside it."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.customized = False  # the user changed the list: keep it across page visits
        self.include_metadata = False
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("exportColumnList")
        self.list.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.itemChanged.connect(lambda *_: self._touched())
        self.list.model().rowsMoved.connect(lambda *_: self._touched())
        self.btn_up = QtWidgets.QPushButton("&Up")
        self.btn_down = QtWidgets.QPushButton("Do&wn")
        self.btn_default = QtWidgets.QPushButton("&Default")
        self.btn_up.clicked.connect(lambda: self.move_current(-1))
        self.btn_down.clicked.connect(lambda: self.move_current(1))
        self.btn_default.clicked.connect(lambda: self.reset(self.include_metadata, force=True))
        buttons = QtWidgets.QVBoxLayout()
        for b in (self.btn_up, self.btn_down, self.btn_default):
            buttons.addWidget(b)
        buttons.addStretch(1)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.list, 1)
        row.addLayout(buttons)
        self.reset(False, force=True)

    def _touched(self) -> None:
        self.customized = True
        self.changed.emit()

    def set_columns(self, chosen: CsvColumns) -> None:
        """Check ``chosen`` in this order, then list the other columns unchecked."""
        self.list.blockSignals(True)
        self.list.clear()
        for name in (*chosen, *(c for c in ALL_CSV_COLUMNS if c not in chosen)):
            item = QtWidgets.QListWidgetItem(name)
            item.setFlags(
                (item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsDragEnabled)
                & ~Qt.ItemFlag.ItemIsDropEnabled
            )
            item.setCheckState(check_state(name in chosen))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.changed.emit()

    def reset(self, include_metadata: bool, *, force: bool = False) -> None:
        """The default columns (with the metadata ones if asked), unless the user changed
        the list (``force``: Default pressed)."""
        self.include_metadata = include_metadata
        if force or not self.customized:
            self.set_columns(default_csv_columns(include_metadata))
            self.customized = False

    def move_current(self, step: int) -> None:
        """Move the current column up (-1) or down (+1)."""
        row = self.list.currentRow()
        to = row + step
        if row < 0 or not 0 <= to < self.list.count():
            return
        self.list.blockSignals(True)
        item = self.list.takeItem(row)
        self.list.insertItem(to, item)
        self.list.setCurrentRow(to)
        self.list.blockSignals(False)
        self._touched()

    def item(self, name: str) -> QtWidgets.QListWidgetItem:
        return self.list.findItems(name, Qt.MatchFlag.MatchExactly)[0]

    def checked(self) -> CsvColumns:
        """The checked columns in list order."""
        items = [self.list.item(i) for i in range(self.list.count())]
        return tuple(it.text() for it in items if it.checkState() == Qt.CheckState.Checked)
