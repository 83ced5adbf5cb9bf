"""Chart page: pick underlying → expiry → contract (or type an OpenAlgo symbol) and look at it.

Candles with volume and OI panes, an interval switch (bars aggregated from the stored 1-minute
candles), and premium overlays in their own pane: the CE and PE of a strike and their straddle
line, a strangle (CE and PE of two strikes), or the ATM straddle re-chosen every minute.
The plotting module (pyqtgraph) is imported the first time the page is shown, so the window's
cold start does not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.analysis.candles import ContractInfo
from expirytrack_desktop.ui.expiry_picker import ExpiryPicker
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


OVERLAY_MODES = (
    ("straddle at a strike", "straddle"),
    ("strangle (CE / PE strikes)", "strangle"),
    ("ATM straddle, each minute", "atm"),
)
ATM_DAYS = 10  # the ATM straddle is rebuilt minute by minute: the expiry's last ten sessions


class ChartPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("chartPage")
        self.picker = ExpiryPicker(controller, self.load_contracts, "chart")
        self.underlying, self.expiry = self.picker.underlying, self.picker.expiry
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
        self.overlay = QtWidgets.QCheckBox("Premium &overlay")
        self.mode = QtWidgets.QComboBox()
        for label, mode in OVERLAY_MODES:
            self.mode.addItem(label, mode)
        self.strike = QtWidgets.QComboBox()
        self.strike.setToolTip("CE strike (and PE strike of a straddle)")
        self.strike2 = QtWidgets.QComboBox()
        self.strike2.setToolTip("PE strike of a strangle")
        for w in (self.mode, self.strike, self.strike2):
            w.setEnabled(False)
        form = QtWidgets.QHBoxLayout()
        self.picker.add_to(form)
        fields = (("C&ontract", self.contract), ("I&nterval", self.interval))
        for label, widget in fields:
            lab = QtWidgets.QLabel(label)
            lab.setBuddy(widget)
            form.addWidget(lab)
            form.addWidget(widget)
        form.addStretch(1)
        self.message = QtWidgets.QLabel("Collected contracts appear here.")
        self.message.setObjectName("chartMessage")
        self.message.setWordWrap(True)
        # the overlay's controls share the message's line: one row of pickers fits 1280 px
        row2 = QtWidgets.QHBoxLayout()
        row2.addWidget(self.message, 1)
        row2.addWidget(self.overlay)
        for combo in (self.mode, self.strike, self.strike2):
            row2.addWidget(combo)
        self.chart: Any = None  # ChartView, created when first shown
        self.chart_holder = QtWidgets.QVBoxLayout()
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(row2)
        lay.addLayout(self.chart_holder, 1)
        self.contracts: list[ContractInfo] = []
        self.contract.activated.connect(self._on_contract)
        self.interval.currentIndexChanged.connect(self._redraw)
        self.overlay.toggled.connect(self._on_overlay)
        self.strike.currentIndexChanged.connect(self._redraw)
        self.strike2.currentIndexChanged.connect(self._redraw)
        self.mode.currentIndexChanged.connect(self._on_mode)

    # --- lifecycle ---------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.chart is None:
            module = importlib.import_module("expirytrack_desktop.ui.chart_view")  # lazy: pyqtgraph
            self.chart = module.ChartView(self)
            self.chart_holder.addWidget(self.chart)
        if not self.picker.loaded:
            self.schedule_refresh()

    def schedule_refresh(self) -> None:
        self.controller.schedule(self.refresh(), name="chart-refresh")

    async def refresh(self) -> None:
        if not await self.picker.refresh():
            self.message.setText("Nothing collected yet: collect an expiry, then look at it here.")

    async def load_contracts(self) -> None:
        key, expiry = self.picker.key, self.picker.chosen
        self.contracts = (
            await self.controller.analysis.contracts(key, expiry) if key and expiry else []
        )
        self.contract.blockSignals(True)
        self.contract.clear()
        for c in self.contracts:
            self.contract.addItem(c.symbol, c.contract_id)
        future = next((i for i, c in enumerate(self.contracts) if c.contract_type == "FUT"), 0)
        self.contract.setCurrentIndex(future)
        self.contract.blockSignals(False)
        strikes = sorted({c.strike for c in self.contracts if c.strike is not None})
        for combo in (self.strike, self.strike2):
            combo.blockSignals(True)
            combo.clear()
            for s in strikes:
                combo.addItem(f"{s:g}", s)
            if strikes:
                combo.setCurrentIndex(len(strikes) // 2)
            combo.blockSignals(False)
        await self.draw()

    async def show_contract(
        self, key: str, expiry: Any, contract_id: int, at: int | None = None
    ) -> None:
        """Open a contract from elsewhere (coverage, quality): select it and draw; ``at``
        (epoch seconds, a gap on the quality page): show the two hours around it."""
        await self.picker.select(key, expiry)  # loads its contracts
        self.contract.setCurrentIndex(max(self.contract.findData(contract_id), 0))
        await self.draw()
        if at is not None and self.chart is not None and self.chart.series:
            slot = self.chart.axis.slot(at)
            self.chart.price.setXRange(slot - 60, slot + 60, padding=0)

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
        overlays = await self.overlays(minutes) if self.overlay.isChecked() else {}
        self.chart.set_series(candles, minutes, overlays)
        symbol = self.contract.currentText()
        if candles:
            self.message.setText(
                f"{symbol}: {len(candles):,} bars of {self.interval.currentText()} — drag or "
                "←/→ to pan, wheel or +/− to zoom, Home to fit"
            )
        else:
            self.message.setText(f"{symbol}: no candles stored (no trades, or not collected yet).")

    async def overlays(self, minutes: int) -> dict[str, tuple[list[int], list[float]]]:
        """The premium lines of the chosen mode: components and their sum."""
        mode = self.mode.currentData()
        analysis = self.controller.analysis
        if mode == "atm":
            key, expiry = self.picker.key, self.picker.chosen
            if key is None or expiry is None:
                return {}
            days = (await analysis.trading_days(key, expiry))[-ATM_DAYS:]
            ts: list[int] = []
            ce: list[float] = []
            pe: list[float] = []
            for day in days:
                for p in await analysis.straddle(key, expiry, day):
                    ts.append(p.ts)
                    ce.append(p.ce)
                    pe.append(p.pe)
            if not ts:
                return {}
            total = [c + p for c, p in zip(ce, pe, strict=True)]
            return {"ATM CE": (ts, ce), "ATM PE": (ts, pe), "ATM straddle": (ts, total)}
        if self.strike.currentData() is None:
            return {}
        k_ce = float(self.strike.currentData())
        k_pe = float(self.strike2.currentData()) if mode == "strangle" else k_ce
        closes: dict[str, dict[int, float]] = {}
        out: dict[str, tuple[list[int], list[float]]] = {}
        for kind, strike in (("CE", k_ce), ("PE", k_pe)):
            c = next(
                (c for c in self.contracts if c.strike == strike and c.contract_type == kind), None
            )
            if c is not None:
                bars = await analysis.candles(c.contract_id, minutes)
                closes[kind] = {b.ts: b.close for b in bars}
                out[f"{kind} {strike:g}"] = (list(closes[kind]), list(closes[kind].values()))
        if len(closes) == 2:
            name = f"straddle {k_ce:g}" if k_ce == k_pe else f"strangle {k_ce:g}/{k_pe:g}"
            out[name] = _straddle(closes["CE"], closes["PE"])
        return out

    def _selected_contract(self) -> int | None:
        text = self.contract.currentText().strip().upper()
        for c in self.contracts:  # a typed symbol wins over the list position
            if c.symbol.upper() == text:
                return c.contract_id
        data = self.contract.currentData()
        return int(data) if data is not None else None

    def _on_contract(self) -> None:
        self._redraw()

    def _on_overlay(self, on: bool) -> None:
        self.mode.setEnabled(on)
        self._on_mode()

    def _on_mode(self) -> None:
        on, mode = self.overlay.isChecked(), self.mode.currentData()
        self.strike.setEnabled(on and mode != "atm")
        self.strike2.setEnabled(on and mode == "strangle")
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
