"""Underlying and expiry choosers shared by the viewer pages (Chart, Option chain, Data quality).

Lists what the database holds (underlyings with stored contracts, their expiries newest first)
and calls the page's ``on_expiry`` coroutine whenever the chosen expiry changes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.ui.qt import QtWidgets

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller


class ExpiryPicker:
    def __init__(
        self, controller: Controller, on_expiry: Callable[[], Coroutine[Any, Any, None]], name: str
    ) -> None:
        self.controller = controller
        self.on_expiry = on_expiry
        self.name = name  # task names: one refresh per page at a time
        self.underlying = QtWidgets.QComboBox()
        self.expiry = QtWidgets.QComboBox()
        # never squeezed below a symbol such as NIFTYNXT50 or a whole date by a full toolbar
        for combo, chars in ((self.underlying, 11), (self.expiry, 10)):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.setMinimumContentsLength(chars)
            combo.setMinimumWidth(combo.minimumSizeHint().width())
        self.loaded = False
        self.underlying.currentIndexChanged.connect(
            lambda: controller.schedule(self.load_expiries(), name=f"{name}-expiries")
        )
        self.expiry.currentIndexChanged.connect(
            lambda: controller.schedule(self.on_expiry(), name=f"{name}-expiry")
        )

    def add_to(self, layout: QtWidgets.QBoxLayout) -> None:
        for text, combo in (("&Underlying", self.underlying), ("Ex&piry", self.expiry)):
            label = QtWidgets.QLabel(text)
            label.setBuddy(combo)
            layout.addWidget(label)
            layout.addWidget(combo)

    @property
    def key(self) -> str | None:
        data = self.underlying.currentData()
        return str(data) if data is not None else None

    @property
    def chosen(self) -> date | None:
        data = self.expiry.currentData()
        return data if isinstance(data, date) else None

    async def refresh(self) -> bool:
        """Reload the underlyings (keeping the current one) and its expiries; False if none."""
        current = self.key
        items = await self.controller.analysis.underlyings()
        self.loaded = True
        self.underlying.blockSignals(True)
        self.underlying.clear()
        for label, key in items:
            self.underlying.addItem(label, key)
        self.underlying.setCurrentIndex(max(self.underlying.findData(current), 0))
        self.underlying.blockSignals(False)
        if not items:
            return False
        await self.load_expiries()
        return True

    async def load_expiries(self) -> None:
        key = self.key
        expiries = await self.controller.analysis.expiries(key) if key else []
        self.expiry.blockSignals(True)
        self.expiry.clear()
        for d in expiries:
            self.expiry.addItem(d.isoformat(), d)
        self.expiry.blockSignals(False)
        await self.on_expiry()

    async def select(self, key: str, expiry: date) -> None:
        """Show ``key``/``expiry`` (from another page); a known expiry with nothing stored yet
        is added to the list so the page can say so."""
        if not self.loaded or self.underlying.findData(key) < 0:
            await self.refresh()
        self.underlying.blockSignals(True)
        self.underlying.setCurrentIndex(max(self.underlying.findData(key), 0))
        self.underlying.blockSignals(False)
        key_now = self.key
        expiries = await self.controller.analysis.expiries(key_now) if key_now else []
        self.expiry.blockSignals(True)
        self.expiry.clear()
        for d in expiries:
            self.expiry.addItem(d.isoformat(), d)
        if self.expiry.findData(expiry) < 0:
            self.expiry.addItem(expiry.isoformat(), expiry)
        self.expiry.setCurrentIndex(self.expiry.findData(expiry))
        self.expiry.blockSignals(False)
        await self.on_expiry()
