"""The collection wizard's first step: which underlyings. The 7 indices are listed by default;
a search over every index and stock of Upstox's instrument master adds more as you type (Enter
adds the highlighted match, "All stocks" all of them), and any instrument key can be typed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets
from expirytrack_desktop.ui.underlying_search import UnderlyingSearch
from expirytrack_desktop.ui.wizard_common import WizardPage, button_row, check_state

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

KeyRole = Qt.ItemDataRole.UserRole + 20


class UnderlyingsPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller,
            "1. Underlyings",
            "Choose the index or stock underlyings whose expired futures and options to collect.",
        )
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("underlyingList")
        self.list.itemChanged.connect(self._changed)
        for symbol, key in controller.catalog.known_underlyings():
            self._add_item(symbol, key, checked=False)
        self.btn_all = QtWidgets.QPushButton("Select &all")
        self.btn_none = QtWidgets.QPushButton("Select n&one")
        self.btn_all.clicked.connect(lambda: self._check_all(True))
        self.btn_none.clicked.connect(lambda: self._check_all(False))
        self.key_edit = QtWidgets.QLineEdit()
        self.key_edit.setObjectName("instrumentKeyEdit")
        self.key_edit.setPlaceholderText("Another instrument key, e.g. NSE_EQ|INE002A01018")
        # Enter adds the key (and does not also press the wizard's default button)
        self.key_edit.installEventFilter(self)
        self.btn_add = QtWidgets.QPushButton("A&dd")
        self.btn_add.clicked.connect(self._add_custom)
        add = QtWidgets.QHBoxLayout()
        add.addWidget(self.key_edit, 1)
        add.addWidget(self.btn_add)
        # every index and stock of the instrument master, searched as you type
        self.search = UnderlyingSearch()
        self.search.chosen.connect(self._add_chosen)
        self.search.all_stocks.connect(self._add_all_stocks)
        self.stack(
            self.search, button_row(self.btn_all, self.btn_none), self.list, add, main=self.list
        )
        controller.schedule(self._load_universe(), name="wizard-universe")

    def _add_item(self, symbol: str, key: str, checked: bool) -> QtWidgets.QListWidgetItem:
        item = QtWidgets.QListWidgetItem(f"{symbol}    ({key})" if symbol != key else key)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(check_state(checked))
        item.setData(KeyRole, key)
        item.setData(Qt.ItemDataRole.UserRole, symbol)
        self.list.addItem(item)
        return item

    def items(self) -> list[QtWidgets.QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def keys(self) -> list[str]:
        return [str(it.data(KeyRole)) for it in self.items()]

    def set_checked(self, keys_or_symbols: list[str]) -> None:
        wanted = set(keys_or_symbols)
        for it in self.items():
            hit = it.data(KeyRole) in wanted or it.data(Qt.ItemDataRole.UserRole) in wanted
            it.setCheckState(check_state(hit))

    def selected(self) -> list[tuple[str, str]]:
        """(symbol, key) of the checked items, in list order."""
        return [
            (str(it.data(Qt.ItemDataRole.UserRole)), str(it.data(KeyRole)))
            for it in self.items()
            if it.checkState() == Qt.CheckState.Checked
        ]

    def _check_all(self, on: bool) -> None:
        for it in self.items():
            it.setCheckState(check_state(on))

    def _add_custom(self) -> None:
        text = self.key_edit.text().strip()
        error = self.controller.catalog.instrument_key_error(text)
        if error:
            self.message.error(error)
            return
        if text in self.keys():
            for it in self.items():
                if it.data(KeyRole) == text:
                    it.setCheckState(Qt.CheckState.Checked)
            self.message.info(f"{text} is already in the list; it is selected.")
            self.key_edit.clear()
            return
        self._add_item(self.controller.catalog.symbol_for_key(text), text, checked=True)
        self.key_edit.clear()
        self._changed()  # the new item is ticked: Next follows at once
        self.message.info(f"Added {text}.")

    async def _load_universe(self) -> None:
        try:
            work = await self.controller.catalog.universe_loader()
            rows, note = await self.controller.tasks.run_blocking(work)
        except Exception as exc:  # shown, never fatal: keys and the indices still work
            self.search.set_rows([], f"⚠ Could not load the F&O underlyings: {describe_error(exc)}")
            return
        self.search.set_rows(rows, note)

    def _add_chosen(self, symbol: str, key: str) -> None:
        self._tick_or_add([(symbol, key)])
        self.message.info(f"Added {symbol}.")

    def _add_all_stocks(self) -> None:
        stocks = [(r.symbol, r.instrument_key) for r in self.search.stock_rows()]
        self._tick_or_add(stocks)
        self.message.info(f"All {len(stocks)} stocks selected.")

    def _tick_or_add(self, chosen: list[tuple[str, str]]) -> None:
        """Tick these (symbol, key) pairs, adding the ones not listed yet."""
        by_key = {it.data(KeyRole): it for it in self.items()}
        self.list.blockSignals(True)
        try:
            for symbol, key in chosen:
                item = by_key.get(key)
                if item is None:
                    by_key[key] = self._add_item(symbol, key, checked=True)
                else:
                    item.setCheckState(Qt.CheckState.Checked)
        finally:
            self.list.blockSignals(False)
        self._changed()

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if (
            obj is self.key_edit
            and event.type() == QtCore.QEvent.Type.KeyPress
            and isinstance(event, QtGui.QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            self._add_custom()
            return True
        return super().eventFilter(obj, event)

    def _changed(self, *_: object) -> None:
        if self.selected() and self.message.text().startswith("⚠ Select"):
            self.message.clear_message()
        self.refresh_complete()

    def problem(self) -> str | None:
        return None if self.selected() else "Select at least one underlying."
