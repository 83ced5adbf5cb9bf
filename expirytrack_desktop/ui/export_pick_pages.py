"""The export wizard's first two steps: which underlyings, then which of their expiries
(with contract and candle counts read in a worker thread)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.qt import Qt, QtWidgets
from expirytrack_desktop.ui.widgets import BusyIndicator
from expirytrack_desktop.ui.wizard_common import (
    WizardPage,
    button_row,
    check_state,
    cycle_text,
    expiry_item,
    tree_children,
    underlying_item,
)

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

KeyRole = Qt.ItemDataRole.UserRole + 30
ExpiryRole = Qt.ItemDataRole.UserRole + 31


class InstrumentsPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller, "1. Instruments", "Underlyings with collected data in the database."
        )
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("exportInstrumentList")
        self.list.itemChanged.connect(lambda *_: self.refresh_complete())
        self.btn_all = QtWidgets.QPushButton("Select &all")
        self.btn_all.clicked.connect(lambda: self._check_all(True))
        self.busy = BusyIndicator("Reading the database…")
        self.stack(self.busy, button_row(self.btn_all), self.list, main=self.list)
        self.loaded = False

    async def load(self) -> None:
        infos = await self.while_busy(self.busy, self.controller.exports.underlyings())
        if infos is None:
            return
        self.list.blockSignals(True)
        self.list.clear()
        for info in infos:
            label = info.symbol or info.instrument_key
            item = QtWidgets.QListWidgetItem(
                f"{label}  —  {info.expiries} expiries, {info.contracts:,} contracts"
            )
            item.setData(KeyRole, info.instrument_key)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(check_state(len(infos) == 1))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if not infos:
            self.message.error("Nothing collected yet: run a collection first.")
        self.loaded = True
        self.refresh_complete()

    def _check_all(self, on: bool) -> None:
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(check_state(on))

    def set_checked(self, keys: list[str]) -> None:
        for i in range(self.list.count()):
            it = self.list.item(i)
            it.setCheckState(check_state(it.data(KeyRole) in keys))

    def selected(self) -> list[str]:
        return [
            str(self.list.item(i).data(KeyRole))
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def problem(self) -> str | None:
        return None if self.selected() else "Select at least one instrument."


class ExportExpiriesPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller, "2. Expiries", "Expiries in the database, with contract and candle counts."
        )
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setObjectName("exportExpiryTree")
        self.tree.setHeaderLabels(["Expiry", "Cycle", "Contracts", "Candles"])
        self.tree.itemChanged.connect(lambda *_: self.refresh_complete())
        self.busy = BusyIndicator("Counting candles…")
        self.busy.hide()
        self.btn_all = QtWidgets.QPushButton("Select &all")
        self.btn_none = QtWidgets.QPushButton("Select n&one")
        self.btn_all.clicked.connect(lambda: self._check(True))
        self.btn_none.clicked.connect(lambda: self._check(False))
        self.stack(self.busy, button_row(self.btn_all, self.btn_none), self.tree, main=self.tree)
        self._for: tuple[str, ...] | None = None
        self._wanted: set[date] | None = None  # a loaded preset's expiries, for the next load

    def initializePage(self) -> None:
        super().initializePage()
        keys = tuple(self.wizard().instruments_page.selected())  # type: ignore[attr-defined]
        if keys != self._for:
            self.controller.schedule(self.load(keys), name="export-expiries")

    def cleanupPage(self) -> None:
        pass

    async def load(self, keys: tuple[str, ...]) -> None:
        self.tree.clear()
        infos = await self.while_busy(self.busy, self.controller.exports.expiries(list(keys)))
        if infos is None:
            return
        self.tree.blockSignals(True)
        tops: dict[str, QtWidgets.QTreeWidgetItem] = {}
        infos = [i for i in infos if i.contracts > 0]  # expiries never collected: nothing to export
        for info in sorted(infos, key=lambda i: (i.instrument_key, i.expiry), reverse=True):
            top = tops.get(info.instrument_key)
            if top is None:
                label = self.controller.catalog.symbol_for_key(info.instrument_key)
                top = underlying_item([label], KeyRole, info.instrument_key)
                top.setCheckState(0, Qt.CheckState.Unchecked)
                self.tree.addTopLevelItem(top)
                tops[info.instrument_key] = top
            cycle = cycle_text(info.is_weekly)
            candles = "" if info.candles is None else f"{info.candles:,}"
            texts = [info.expiry.isoformat(), cycle, f"{info.contracts:,}", candles]
            wanted = self._wanted
            on = bool(info.candles) if wanted is None else info.expiry in wanted
            child = expiry_item(texts, ExpiryRole, info.expiry, checked=on)
            top.addChild(child)
            top.setExpanded(True)
        self.tree.blockSignals(False)
        for i in range(4):
            self.tree.resizeColumnToContents(i)
        self._for = keys
        self._wanted = None
        self.refresh_complete()

    def want(self, expiries: tuple[date, ...] | None) -> None:
        """Check these expiries (None: every one with candles), now and after a reload."""
        self._wanted = None if expiries is None else set(expiries)
        self.tree.blockSignals(True)
        for it in self._items():
            on = it.data(0, ExpiryRole) in self._wanted if self._wanted is not None else True
            it.setCheckState(0, check_state(on))
        self.tree.blockSignals(False)
        self.refresh_complete()

    def _items(self) -> list[QtWidgets.QTreeWidgetItem]:
        return [child for _, child in tree_children(self.tree)]

    def _check(self, on: bool) -> None:
        self.tree.blockSignals(True)
        for it in self._items():
            it.setCheckState(0, check_state(on))
        self.tree.blockSignals(False)
        self.refresh_complete()

    def selected(self) -> tuple[date, ...]:
        return tuple(
            sorted(
                {
                    it.data(0, ExpiryRole)
                    for it in self._items()
                    if it.checkState(0) == Qt.CheckState.Checked
                }
            )
        )

    def problem(self) -> str | None:
        return None if self.selected() else "Select at least one expiry."

    def ready(self) -> bool:
        return not self.is_loading() and super().ready()
