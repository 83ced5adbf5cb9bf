"""Coverage at a glance: underlyings (rows) × months (columns), each cell that underlying's
expiries of the month — one line each, day + symbol + word, on a tinted background.

Each underlying keeps its own expiries (NIFTY's weeklies, a stock's one monthly) instead of a
shared date axis, so six months of dozens of underlyings fit 1280 px without scrolling
sideways. Clicking an expiry emits :attr:`CoverageMonthsView.expiryClicked`; the dashboard
opens its contracts on the Data quality page, from where a double-click charts one. An
expiry's context menu also offers "Collect missing" (:attr:`collectRequested`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from expirytrack_desktop.ui.models import COVERAGE_LABELS
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

MONTHS = 6
LINE_HEIGHT = 18


@dataclass(frozen=True, slots=True)
class ExpiryChip:
    key: str  # instrument key
    expiry: date
    state: str  # complete | partial | none | failed
    done: int = 0
    total: int = 0

    @property
    def text(self) -> str:
        label = COVERAGE_LABELS.get(self.state, self.state)
        if self.state == "partial" and self.total:
            label = f"{label} {self.done}/{self.total}"
        return f"{self.expiry:%d} {label}"


def month_columns(chips: list[ExpiryChip], months: int = MONTHS) -> list[tuple[int, int]]:
    """The ``months`` (year, month) ending with the newest expiry's month, oldest first."""
    newest = max((c.expiry for c in chips), default=date.today())
    out = []
    y, m = newest.year, newest.month
    for _ in range(months):
        out.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


class CoverageMonthsModel(QtCore.QAbstractTableModel):
    ChipsRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, str]] = []  # (label, instrument key)
        self.months: list[tuple[int, int]] = []
        self.cells: dict[tuple[int, int], list[ExpiryChip]] = {}
        self.colours: dict[str, QtGui.QBrush] = {}

    def set_chips(self, labels: dict[str, str], chips: list[ExpiryChip]) -> None:
        """``labels``: instrument key -> row label; ``chips``: every known expiry."""
        self.beginResetModel()
        self.months = month_columns(chips)
        keys = sorted({c.key for c in chips}, key=lambda k: labels.get(k, k))
        self.rows = [(labels.get(k, k), k) for k in keys]
        index = {k: i for i, k in enumerate(keys)}
        col = {ym: j for j, ym in enumerate(self.months)}
        self.cells = {}
        for c in sorted(chips, key=lambda c: c.expiry):
            j = col.get((c.expiry.year, c.expiry.month))
            if j is not None:
                self.cells.setdefault((index[c.key], j), []).append(c)
        self.endResetModel()

    def label_of(self, key: str) -> str:
        return next((label for label, k in self.rows if k == key), key)

    def rowCount(self, parent: Any = QtCore.QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Any = QtCore.QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.months)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            y, m = self.months[section]
            return date(y, m, 1).strftime("%b %Y")
        return self.rows[section][0]

    def data(self, index: Any, role: int = 0) -> Any:
        if not index.isValid():
            return None
        chips = self.cells.get((index.row(), index.column()), [])
        if role == self.ChipsRole:
            return chips
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return "\n".join(c.text for c in chips) if chips else ""
        if role == Qt.ItemDataRole.ToolTipRole and chips:
            return "\n".join(f"{c.expiry.isoformat()}: {c.text.split(' ', 1)[1]}" for c in chips)
        if role == Qt.ItemDataRole.SizeHintRole:
            return QtCore.QSize(150, max(len(chips), 1) * LINE_HEIGHT + 6)
        return None


class ChipDelegate(QtWidgets.QStyledItemDelegate):
    """Paints one tinted line per expiry; a click reports which one."""

    def __init__(self, model: CoverageMonthsModel, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model

    def chip_at(self, index: QtCore.QModelIndex, rect: QtCore.QRect, y: int) -> ExpiryChip | None:
        chips: list[ExpiryChip] = index.data(CoverageMonthsModel.ChipsRole) or []
        i = (y - rect.top() - 3) // LINE_HEIGHT
        return chips[i] if 0 <= i < len(chips) else None

    def paint(self, painter: QtGui.QPainter, option: Any, index: Any) -> None:
        chips: list[ExpiryChip] = index.data(CoverageMonthsModel.ChipsRole) or []
        painter.save()
        rect = option.rect
        for i, chip in enumerate(chips):
            line = QtCore.QRect(
                rect.left() + 3, rect.top() + 3 + i * LINE_HEIGHT, rect.width() - 6, LINE_HEIGHT - 2
            )
            brush = self.model.colours.get(chip.state)
            if brush is not None:
                painter.fillRect(line, brush)
            painter.setPen(option.palette.color(QtGui.QPalette.ColorRole.Text))
            painter.drawText(
                line.adjusted(4, 0, -2, 0), int(Qt.AlignmentFlag.AlignVCenter), chip.text
            )
        if option.state & QtWidgets.QStyle.StateFlag.State_HasFocus:
            pen = QtGui.QPen(option.palette.color(QtGui.QPalette.ColorRole.Highlight))
            pen.setWidth(2)
            painter.setPen(pen)
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
        painter.restore()

    def sizeHint(self, option: Any, index: Any) -> QtCore.QSize:
        hint = index.data(Qt.ItemDataRole.SizeHintRole)
        return hint if isinstance(hint, QtCore.QSize) else super().sizeHint(option, index)


class CoverageMonthsView(QtWidgets.QTableView):
    expiryClicked = Signal(str, object)  # instrument key, expiry date
    collectRequested = Signal(str, object)  # "Collect missing" of that expiry

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("coverageMonths")
        self.months_model = CoverageMonthsModel(self)
        self.setModel(self.months_model)
        self.delegate = ChipDelegate(self.months_model, self)
        self.setItemDelegate(self.delegate)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTabKeyNavigation(False)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMouseTracking(True)
        self.activated.connect(self._activated)

    def set_chips(self, labels: dict[str, str], chips: list[ExpiryChip]) -> None:
        self.months_model.set_chips(labels, chips)
        self.resizeRowsToContents()

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        pos = event.position().toPoint()
        index = self.indexAt(pos)
        if index.isValid():
            chip = self.delegate.chip_at(index, self.visualRect(index), pos.y())
            if chip is not None:
                self.expiryClicked.emit(chip.key, chip.expiry)

    def chip_at_pos(self, pos: QtCore.QPoint) -> ExpiryChip | None:
        index = self.indexAt(pos)
        if not index.isValid():
            return None
        return self.delegate.chip_at(index, self.visualRect(index), pos.y())

    def chip_menu(self, chip: ExpiryChip) -> QtWidgets.QMenu:
        """Open its contracts, or collect what verify finds missing of it."""
        menu = QtWidgets.QMenu(self)
        title = f"{chip.expiry.isoformat()}: {chip.text.split(' ', 1)[1]}"
        menu.addSection(title)
        menu.addAction("Open on Data quality").triggered.connect(
            lambda: self.expiryClicked.emit(chip.key, chip.expiry)
        )
        collect = menu.addAction("Collect missing")
        collect.setEnabled(chip.state != "complete")
        collect.triggered.connect(lambda: self.collectRequested.emit(chip.key, chip.expiry))
        return menu

    def contextMenuEvent(self, event: QtGui.QContextMenuEvent) -> None:
        chip = self.chip_at_pos(self.viewport().mapFrom(self, event.pos()))
        if chip is not None:
            self.chip_menu(chip).exec(event.globalPos())

    def _activated(self, index: QtCore.QModelIndex) -> None:
        """Enter on a cell: its first expiry not complete (else its first)."""
        chips: list[ExpiryChip] = index.data(CoverageMonthsModel.ChipsRole) or []
        if chips:
            chip = next((c for c in chips if c.state != "complete"), chips[0])
            self.expiryClicked.emit(chip.key, chip.expiry)
