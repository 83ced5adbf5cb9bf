"""Data quality page: an expiry's contracts with missing minutes, anomalies and failed windows.

Select a contract to see its runs of missing minutes (the gaps timeline); double-click to open
it on the Chart page; "Collect missing" starts a collection of the expiry, which plans exactly
the windows not stored yet. ``expirytrack verify`` checks the whole database the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.analysis.quality import ContractQuality, GapRun
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.ui.expiry_picker import ExpiryPicker
from expirytrack_desktop.ui.models import RowsTableModel
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets
from expirytrack_desktop.ui.widgets import rows_table

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

HEADERS = (
    "Contract",
    "Candles",
    "Days",
    "Missing minutes",
    "Missing %",
    "OHLC",
    "Negative",
    "OI jumps",
    "Failed windows",
)


class QualityModel(RowsTableModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ContractQuality] = []
        self.warn = QtGui.QBrush(QtGui.QColor(230, 170, 20, 90))
        self.bad = QtGui.QBrush(QtGui.QColor(220, 50, 50, 90))

    @property
    def rows(self) -> list[ContractQuality]:
        return self._rows

    def titles(self) -> tuple[str, ...]:
        return HEADERS

    def set_rows(self, rows: list[ContractQuality]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def row_data(self, q: ContractQuality, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            pct = q.missing_pct
            values = (
                q.symbol,
                f"{q.candles:,}",
                f"{q.days_traded}",
                f"{q.missing_minutes:,}",
                "no candles" if pct is None else f"{pct:.1f} %",
                f"{q.ohlc_anomalies:,}",
                f"{q.negative_values:,}",
                f"{q.oi_jumps:,}",
                f"{q.failed_windows:,}",
            )
            return values[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            if col in (5, 6, 7) and [q.ohlc_anomalies, q.negative_values, q.oi_jumps][col - 5]:
                return self.bad
            if col == 8 and q.failed_windows:
                return self.bad
            if col in (3, 4) and q.contract_type == "FUT" and q.missing_minutes:
                return self.warn  # a future trades every minute: missing ones are suspicious
        if role == Qt.ItemDataRole.UserRole:
            return q
        return None


class QualityPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("qualityPage")
        self.picker = ExpiryPicker(controller, self.load_quality, "quality")
        self.underlying, self.expiry = self.picker.underlying, self.picker.expiry
        self.collect_button = QtWidgets.QPushButton("Collect &missing")
        top = QtWidgets.QHBoxLayout()
        self.picker.add_to(top)
        top.addStretch(1)
        top.addWidget(self.collect_button)
        self.summary = QtWidgets.QLabel("Pick an expiry.")
        self.summary.setObjectName("qualitySummary")
        self.summary.setWordWrap(True)
        self.model = QualityModel(self)
        self.table = rows_table(self.model, "qualityTable")
        self.gaps = QtWidgets.QListWidget()
        self.gaps.setObjectName("gapList")
        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        gap_box = QtWidgets.QGroupBox("Missing minutes of the selected contract")
        QtWidgets.QVBoxLayout(gap_box).addWidget(self.gaps)
        split.addWidget(gap_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.table.doubleClicked.connect(self._open_chart)
        self.collect_button.clicked.connect(self._collect)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self.picker.loaded:
            self.schedule_refresh()

    def schedule_refresh(self) -> None:
        self.controller.schedule(self.refresh(), name="quality-refresh")

    async def refresh(self) -> None:
        if not await self.picker.refresh():
            self.summary.setText("Nothing collected yet.")

    async def show_expiry(self, key: str, expiry: Any) -> None:
        """Open ``key``/``expiry`` (from the dashboard's coverage)."""
        await self.picker.select(key, expiry)

    async def load_quality(self) -> None:
        key, expiry = self.picker.key, self.picker.chosen
        rows = await self.controller.analysis.quality(key, expiry) if key and expiry else []
        self.model.set_rows(rows)
        self.gaps.clear()
        self.table.resizeColumnsToContents()
        self.summary.setText(summary_text(rows))

    def _on_row(self, current: QtCore.QModelIndex, _previous: QtCore.QModelIndex) -> None:
        q = self.model.data(current, Qt.ItemDataRole.UserRole) if current.isValid() else None
        if q is not None:
            self.controller.schedule(self.show_gaps(q), name="quality-gaps")

    async def show_gaps(self, q: ContractQuality) -> None:
        runs = await self.controller.analysis.gaps(q.contract_id)
        self.gaps.clear()
        for line in gap_lines(runs):
            self.gaps.addItem(line)
        if not runs:
            self.gaps.addItem("No missing minute on the days it traded.")

    def _open_chart(self, index: QtCore.QModelIndex) -> None:
        q = self.model.data(index, Qt.ItemDataRole.UserRole)
        window = self.window()
        chart = getattr(window, "chart_page", None)
        if q is None or chart is None:
            return
        window.tabs.setCurrentWidget(chart)  # type: ignore[attr-defined]
        key, expiry = self.picker.key, self.picker.chosen
        self.controller.schedule(chart.show_contract(key, expiry, q.contract_id), name="chart-open")

    def _collect(self) -> None:
        key, expiry = self.picker.key, self.picker.chosen
        if key is not None and expiry is not None:
            self.controller.schedule(
                self.controller.analysis.collect(key, [expiry]), name="quality-collect"
            )


def summary_text(rows: list[ContractQuality]) -> str:
    if not rows:
        return "No contracts stored for this expiry."
    traded = [q for q in rows if q.candles]
    anomalies = sum(q.anomalies for q in rows)
    failed = sum(q.failed_windows for q in rows)
    missing = sum(q.missing_minutes for q in traded)
    expected = sum(q.expected_minutes for q in traded)
    pct = 100.0 * missing / expected if expected else 0.0
    return (
        f"{len(rows)} contracts ({len(rows) - len(traded)} without a candle); "
        f"{missing:,} of {expected:,} session minutes without a candle ({pct:.1f} %: options "
        f"that did not trade have none); {anomalies:,} anomalies; {failed:,} failed windows. "
        "Double-click a contract to chart it."
    )


def gap_lines(runs: list[GapRun]) -> list[str]:
    """One line per run of missing minutes, longest first (at most 200)."""
    out = []
    for r in sorted(runs, key=lambda r: (-r.minutes, r.start_ts))[:200]:
        start = datetime.fromtimestamp(r.start_ts, IST)
        out.append(f"{start:%Y-%m-%d %H:%M} — {r.minutes} min")
    return out
