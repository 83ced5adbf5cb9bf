"""Chart page: pick underlying → expiry → contract (or type an OpenAlgo symbol) and look at it.

Candles with volume and OI panes, an interval switch (bars aggregated from the stored 1-minute
candles), and overlays: the CE and PE of a strike and their straddle line (CE + PE premium).
The plotting module (pyqtgraph) is imported the first time the page is shown, so the window's
cold start does not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.analysis.candles import ContractInfo
from expirytrack_desktop.ui.qt import Qt, QtWidgets

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

INTERVALS = (
    ("1 minute", 1),
    ("3 minutes", 3),
    ("5 minutes", 5),
    ("15 minutes", 15),
    ("30 minutes", 30),
    ("1 day", 1440),
)


class ChartPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("chartPage")
        self.underlying = QtWidgets.QComboBox()
        self.expiry = QtWidgets.QComboBox()
        for combo in (self.underlying, self.expiry):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.contract = QtWidgets.QComboBox()
        self.contract.setEditable(True)  # type an OpenAlgo symbol; the completer finds it
        self.contract.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        completer = self.contract.completer()
        if completer is not None:
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.contract.setMinimumWidth(220)
        self.interval = QtWidgets.QComboBox()
        for label, minutes in INTERVALS:
            self.interval.addItem(label, minutes)
        self.overlay = QtWidgets.QCheckBox("CE + PE of strike, &straddle")
        self.strike = QtWidgets.QComboBox()
        self.strike.setEnabled(False)
        form = QtWidgets.QHBoxLayout()
        fields = (
            ("&Underlying", self.underlying),
            ("Ex&piry", self.expiry),
            ("C&ontract", self.contract),
            ("I&nterval", self.interval),
        )
        for label, widget in fields:
            lab = QtWidgets.QLabel(label)
            lab.setBuddy(widget)
            form.addWidget(lab)
            form.addWidget(widget)
        form.addWidget(self.overlay)
        form.addWidget(self.strike)
        form.addStretch(1)
        self.message = QtWidgets.QLabel("Collected contracts appear here.")
        self.message.setObjectName("chartMessage")
        self.chart: Any = None  # ChartView, created when first shown
        self.chart_holder = QtWidgets.QVBoxLayout()
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addLayout(self.chart_holder, 1)
        self.contracts: list[ContractInfo] = []
        self.loaded = False
        self.underlying.currentIndexChanged.connect(self._on_underlying)
        self.expiry.currentIndexChanged.connect(self._on_expiry)
        self.contract.activated.connect(self._on_contract)
        self.interval.currentIndexChanged.connect(self._redraw)
        self.overlay.toggled.connect(self._on_overlay)
        self.strike.currentIndexChanged.connect(self._redraw)

    # --- lifecycle ---------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.chart is None:
            module = importlib.import_module("expirytrack_desktop.ui.chart_view")  # lazy: pyqtgraph
            self.chart = module.ChartView(self)
            self.chart_holder.addWidget(self.chart)
        if not self.loaded:
            self.schedule_refresh()

    def schedule_refresh(self) -> None:
        self.controller.schedule(self.refresh(), name="chart-refresh")

    async def refresh(self) -> None:
        current = self.underlying.currentData()
        items = await self.controller.analysis.underlyings()
        self.underlying.blockSignals(True)
        self.underlying.clear()
        for label, key in items:
            self.underlying.addItem(label, key)
        self.underlying.blockSignals(False)
        self.loaded = True
        if not items:
            self.message.setText("Nothing collected yet: collect an expiry, then look at it here.")
            return
        index = max(self.underlying.findData(current), 0)
        self.underlying.setCurrentIndex(index)
        await self.load_expiries()

    async def load_expiries(self) -> None:
        key = self.underlying.currentData()
        expiries = await self.controller.analysis.expiries(key) if key else []
        self.expiry.blockSignals(True)
        self.expiry.clear()
        for d in expiries:
            self.expiry.addItem(d.isoformat(), d)
        self.expiry.blockSignals(False)
        await self.load_contracts()

    async def load_contracts(self) -> None:
        key, expiry = self.underlying.currentData(), self.expiry.currentData()
        self.contracts = await self.controller.analysis.contracts(key, expiry) if expiry else []
        self.contract.blockSignals(True)
        self.contract.clear()
        for c in self.contracts:
            self.contract.addItem(c.symbol, c.contract_id)
        future = next((i for i, c in enumerate(self.contracts) if c.contract_type == "FUT"), 0)
        self.contract.setCurrentIndex(future)
        self.contract.blockSignals(False)
        strikes = sorted({c.strike for c in self.contracts if c.strike is not None})
        self.strike.blockSignals(True)
        self.strike.clear()
        for s in strikes:
            self.strike.addItem(f"{s:g}", s)
        if strikes:
            self.strike.setCurrentIndex(len(strikes) // 2)
        self.strike.blockSignals(False)
        await self.draw()

    async def show_contract(self, key: str, expiry: Any, contract_id: int) -> None:
        """Open a contract from elsewhere (coverage, quality): select it and draw."""
        if self.underlying.findData(key) < 0:
            await self.refresh()
        self.underlying.blockSignals(True)
        self.underlying.setCurrentIndex(max(self.underlying.findData(key), 0))
        self.underlying.blockSignals(False)
        await self.load_expiries()
        self.expiry.setCurrentIndex(max(self.expiry.findData(expiry), 0))
        await self.load_contracts()
        self.contract.setCurrentIndex(max(self.contract.findData(contract_id), 0))
        await self.draw()

    # --- drawing ------------------------------------------------------------------------
    async def draw(self) -> None:
        if self.chart is None:
            return
        contract_id = self._selected_contract()
        if contract_id is None:
            self.chart.set_series([], 1)
            self.message.setText("No contract selected.")
            return
        minutes = int(self.interval.currentData())
        analysis = self.controller.analysis
        candles = await analysis.candles(contract_id, minutes)
        overlays: dict[str, tuple[list[int], list[float]]] = {}
        if self.overlay.isChecked() and self.strike.currentData() is not None:
            strike = float(self.strike.currentData())
            sides = {c.contract_type: c for c in self.contracts if c.strike == strike}
            series = {}
            for kind in ("CE", "PE"):
                if kind in sides:
                    bars = await analysis.candles(sides[kind].contract_id, minutes)
                    series[kind] = {b.ts: b.close for b in bars}
                    overlays[f"{kind} {strike:g}"] = (
                        list(series[kind]),
                        list(series[kind].values()),
                    )
            if len(series) == 2:
                overlays[f"straddle {strike:g}"] = _straddle(series["CE"], series["PE"])
        self.chart.set_series(candles, minutes, overlays)
        symbol = self.contract.currentText()
        if candles:
            self.message.setText(
                f"{symbol}: {len(candles):,} bars of {self.interval.currentText()} — drag or "
                "←/→ to pan, wheel or +/− to zoom, Home to fit"
            )
        else:
            self.message.setText(f"{symbol}: no candles stored (no trades, or not collected yet).")

    def _selected_contract(self) -> int | None:
        text = self.contract.currentText().strip().upper()
        for c in self.contracts:  # a typed symbol wins over the list position
            if c.symbol.upper() == text:
                return c.contract_id
        data = self.contract.currentData()
        return int(data) if data is not None else None

    def _on_underlying(self) -> None:
        self.controller.schedule(self.load_expiries(), name="chart-expiries")

    def _on_expiry(self) -> None:
        self.controller.schedule(self.load_contracts(), name="chart-contracts")

    def _on_contract(self) -> None:
        self._redraw()

    def _on_overlay(self, on: bool) -> None:
        self.strike.setEnabled(on)
        self._redraw()

    def _redraw(self) -> None:
        self.controller.schedule(self.draw(), name="chart-draw")


def _straddle(ce: dict[int, float], pe: dict[int, float]) -> tuple[list[int], list[float]]:
    """CE + PE at every bar where either traded, each side's last price carried forward."""
    times = sorted(set(ce) | set(pe))
    out_t: list[int] = []
    out_v: list[float] = []
    last_c = last_p = None
    for t in times:
        last_c = ce.get(t, last_c)
        last_p = pe.get(t, last_p)
        if last_c is not None and last_p is not None:
            out_t.append(t)
            out_v.append(last_c + last_p)
    return out_t, out_v
