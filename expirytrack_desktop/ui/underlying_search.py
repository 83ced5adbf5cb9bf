"""Search over every F&O underlying of the instrument master, for the wizard's first step.

Filters as you type (symbol or company name, any case) into two groups, Indices and Stocks;
Enter (or a double click) adds the highlighted match, "All stocks" adds every stock. The rows
come from the engine's cached master (``Catalog.underlyings``); this widget only shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

RowRole = Qt.ItemDataRole.UserRole + 30
MAX_SHOWN = 60  # per group; typing more narrows it


class UnderlyingSearch(QtWidgets.QWidget):
    """A search field over the universe with grouped matches. Emits ``chosen(symbol, key)``
    for a match taken with Enter/double click, ``all_stocks()`` for the button."""

    chosen = Signal(str, str)
    all_stocks = Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self.field = QtWidgets.QLineEdit()
        self.field.setObjectName("underlyingSearch")
        self.field.setPlaceholderText("Search all underlyings by symbol or company name…")
        self.field.setClearButtonEnabled(True)
        self.field.textChanged.connect(self._filter)
        self.field.installEventFilter(self)
        self.btn_all_stocks = QtWidgets.QPushButton("All &stocks")
        self.btn_all_stocks.setObjectName("allStocksButton")
        self.btn_all_stocks.setEnabled(False)
        self.btn_all_stocks.clicked.connect(self.all_stocks.emit)
        self.results = QtWidgets.QTreeWidget()
        self.results.setObjectName("underlyingMatches")
        self.results.setHeaderLabels(["Symbol", "Name", "Lot"])
        self.results.setRootIsDecorated(False)
        self.results.setUniformRowHeights(True)
        self.results.itemDoubleClicked.connect(lambda item, _c: self._take(item))
        head = self.results.header()
        head.setStretchLastSection(False)
        head.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.results.setMaximumHeight(220)  # the chosen list below keeps its room
        self.results.hide()
        self.status = QtWidgets.QLabel("Loading the list of F&O underlyings…")
        self.status.setObjectName("underlyingSearchStatus")
        self.status.setWordWrap(True)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.field, 1)
        top.addWidget(self.btn_all_stocks)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.results)
        lay.addWidget(self.status)

    # ---------------------------------------------------------------------------- data
    def set_rows(self, rows: Sequence[Any], note: str | None = None) -> None:
        """The universe (``UniverseRow``s); ``note`` says where it came from / what is missing."""
        self._rows = list(rows)
        stocks = sum(1 for r in self._rows if r.underlying_type == "EQUITY")
        self.btn_all_stocks.setEnabled(stocks > 0)
        self.btn_all_stocks.setToolTip(f"Add all {stocks} stock underlyings")
        self.status.setText(
            note
            or f"{len(self._rows) - stocks} indices and {stocks} stocks: type to search, "
            "Enter adds the highlighted one."
        )
        self._filter(self.field.text())

    def stock_rows(self) -> list[Any]:
        return [r for r in self._rows if r.underlying_type == "EQUITY" and r.in_fo]

    # ---------------------------------------------------------------------------- filtering
    def _filter(self, text: str) -> None:
        needle = text.strip().upper()
        self.results.clear()
        if not needle:
            self.results.hide()
            return
        groups = (("Indices", "INDEX"), ("Stocks", "EQUITY"))
        first: QtWidgets.QTreeWidgetItem | None = None
        for title, kind in groups:
            hits = [
                r for r in self._rows
                if r.underlying_type == kind
                and (needle in r.symbol.upper() or needle in r.name.upper())
            ]  # fmt: skip
            if not hits:
                continue
            hits.sort(key=lambda r: (not r.symbol.upper().startswith(needle), r.symbol))
            head = QtWidgets.QTreeWidgetItem([f"{title} ({len(hits)})"])
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = head.font(0)
            font.setBold(True)
            head.setFont(0, font)
            self.results.addTopLevelItem(head)
            head.setFirstColumnSpanned(True)
            for r in hits[:MAX_SHOWN]:
                gone = "" if r.in_fo else f"  (left F&O {r.last_seen.isoformat()})"
                item = QtWidgets.QTreeWidgetItem([r.symbol, r.name + gone, str(r.lot_size)])
                item.setToolTip(0, r.instrument_key)
                item.setData(0, RowRole, (r.symbol, r.instrument_key))
                self.results.addTopLevelItem(item)
                first = first or item
        if first is None:
            none = QtWidgets.QTreeWidgetItem([f"No underlying matches {text.strip()!r}"])
            none.setFlags(Qt.ItemFlag.NoItemFlags)
            self.results.addTopLevelItem(none)
            none.setFirstColumnSpanned(True)
        else:
            self.results.setCurrentItem(first)
        self.results.show()

    def _top(self) -> list[QtWidgets.QTreeWidgetItem]:
        items = (self.results.topLevelItem(i) for i in range(self.results.topLevelItemCount()))
        return [it for it in items if it is not None]

    def matches(self) -> list[tuple[str, str]]:
        """(symbol, key) of the matches shown, in order (tests, accessibility)."""
        rows = (it.data(0, RowRole) for it in self._top())
        return [(str(d[0]), str(d[1])) for d in rows if d]

    def groups(self) -> list[str]:
        """The group headings shown, e.g. ``['Indices (2)', 'Stocks (31)']``."""
        return [it.text(0) for it in self._top() if not it.data(0, RowRole) and it.flags()]

    # ---------------------------------------------------------------------------- taking
    def _take(self, item: QtWidgets.QTreeWidgetItem | None) -> bool:
        data = item.data(0, RowRole) if item is not None else None
        if not data:
            return False
        self.chosen.emit(str(data[0]), str(data[1]))
        self.field.clear()
        return True

    def _move(self, step: int) -> None:
        items = [it for it in self._top() if it.data(0, RowRole)]
        if not items:
            return
        cur = self.results.currentItem()
        i = items.index(cur) if cur in items else -1
        self.results.setCurrentItem(items[max(0, min(len(items) - 1, i + step))])

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if (
            obj is self.field
            and event.type() == QtCore.QEvent.Type.KeyPress
            and isinstance(event, QtGui.QKeyEvent)
        ):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._take(self.results.currentItem())
                return True  # never the wizard's default button
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._move(1 if key == Qt.Key.Key_Down else -1)
                return True
        return super().eventFilter(obj, event)
