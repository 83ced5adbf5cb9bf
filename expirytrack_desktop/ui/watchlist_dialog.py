"""New keep-complete watchlist from the window (the options of ``expirytrack watch add``).

Symbols resolve against the cached instrument master exactly as ``-i`` does (unknown or
ambiguous: the dialog stays open and names the closest matches); nothing is stored until
every field is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from expirytrack_desktop.collect.selection import Selection, SelectionError, parse_contract_types
from expirytrack_desktop.collect.universe import resolve_many
from expirytrack_desktop.collect.watchlist import parse_strikes
from expirytrack_desktop.store.watchlists import Watchlist, check_watch_name, save_watchlist
from expirytrack_desktop.ui.qt import QtWidgets
from expirytrack_desktop.ui.widgets import form_dialog_layout

KINDS = (
    ("These underlyings", "list"),
    ("All indices", "indices"),
    ("All stocks", "stocks"),
    ("Everything in F&O", "everything"),
)


class WatchlistDialog(QtWidgets.QDialog):
    """Name, underlyings (or all indices / all stocks / everything), types, strikes, months."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None,
        db: Any,
        settings: Any,
        on_saved: Callable[[Watchlist], None],
    ) -> None:
        super().__init__(parent)
        self.db = db
        self.settings = settings
        self.on_saved = on_saved
        self.setWindowTitle("New watchlist")
        self.interval = str(settings.default_interval)  # the collection wizard passes its own
        self.name = QtWidgets.QLineEdit("")
        self.kind = QtWidgets.QComboBox()
        for label, value in KINDS:
            self.kind.addItem(label, value)
        self.instruments = QtWidgets.QLineEdit("NIFTY, RELIANCE")
        self.instruments.setToolTip("Symbols or instrument keys, separated by commas")
        self.kind.currentIndexChanged.connect(
            lambda _i: self.instruments.setEnabled(self.kind.currentData() == "list")
        )
        self.types = QtWidgets.QLineEdit("CE,PE,FUT")
        self.strikes = QtWidgets.QLineEdit("all")
        self.strikes.setToolTip(
            "all, N strikes each side of the price near expiry, or X% of it (README)"
        )
        self.months = QtWidgets.QSpinBox()
        self.months.setRange(1, 12)
        self.months.setValue(int(settings.history_months))
        form = QtWidgets.QFormLayout()
        form.addRow("&Name", self.name)
        form.addRow("&Keep", self.kind)
        form.addRow("&Underlyings", self.instruments)
        form.addRow("Contract &types", self.types)
        form.addRow("&Strikes", self.strikes)
        form.addRow("&Months before each expiry", self.months)
        self.error = form_dialog_layout(self, form, "watchlistError")

    def watchlist(self) -> Watchlist:
        """What was typed, checked like ``watch add`` (ValueError with one line if not)."""
        name = check_watch_name(self.name.text().strip())
        kind = str(self.kind.currentData())
        keys: list[str] = []
        if kind == "list":
            texts = [t.strip() for t in self.instruments.text().split(",") if t.strip()]
            if not texts:
                raise SelectionError("name at least one underlying")
            keys = resolve_many(texts, self.db.universe())
        types = parse_contract_types(self.types.text())
        strikes = parse_strikes(self.strikes.text())
        interval = self.interval
        months = self.months.value()
        Selection(keys or ["NIFTY"], None, interval, months, types)
        return Watchlist(name, kind, tuple(keys), types, strikes, interval, months)

    def accept(self) -> None:
        try:
            wl = self.watchlist()
            save_watchlist(self.db, wl)
        except ValueError as exc:  # SelectionError, ResolveError, WatchlistError, bad name
            self.error.setText(str(exc))
            return
        self.on_saved(wl)
        super().accept()
