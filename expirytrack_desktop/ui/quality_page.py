"""Data quality page: verify's findings of an expiry (or every expiry of an underlying), its
contracts' missing minutes and anomalies, and a contract's gaps timeline.

The findings run ``verify``'s logical checks scoped to what is picked (store/findings.py) on
the database's thread; they are grouped underlying → expiry → contract, each with its fix.
"Collect missing" on a finding, a contract or an expiry starts a collection of exactly the
date ranges those findings name. Selecting a contract draws its trading sessions with the
missing minutes marked; clicking a gap (or double-clicking a contract) opens the Chart page.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.analysis.quality import ContractQuality, GapRun, Timeline
from expirytrack_desktop.store.findings import ScopedFinding, ScopedReport, repairs
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.ui.expiry_picker import ExpiryPicker
from expirytrack_desktop.ui.findings_tree import FindingsTree, count_text
from expirytrack_desktop.ui.gap_timeline import GapTimeline
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
        self.scope = QtWidgets.QComboBox()
        self.scope.setObjectName("qualityScope")
        self.scope.addItem("this expiry", False)
        self.scope.addItem("every expiry of the underlying", True)
        self.check_button = QtWidgets.QPushButton("Check &again")
        self.collect_button = QtWidgets.QPushButton("Collect &missing")
        self.collect_button.setEnabled(False)
        top = QtWidgets.QHBoxLayout()
        self.picker.add_to(top)
        scope_label = QtWidgets.QLabel("&Check")
        scope_label.setBuddy(self.scope)
        top.addWidget(scope_label)
        top.addWidget(self.scope)
        top.addWidget(self.check_button)
        top.addStretch(1)
        top.addWidget(self.collect_button)
        self.summary = QtWidgets.QLabel("Pick an expiry.")
        self.summary.setObjectName("qualitySummary")
        self.summary.setWordWrap(True)
        self.model = QualityModel(self)
        self.table = rows_table(self.model, "qualityTable")
        self.tree = FindingsTree()
        self.collect_action = QtGui.QAction("Collect missing", self.tree)
        self.tree.addAction(self.collect_action)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("qualityTabs")
        self.tabs.addTab(self.tree, "&Findings (verify)")
        self.tabs.addTab(self.table, "C&ontracts")
        self.timeline = GapTimeline()
        self.timeline_title = QtWidgets.QLabel("Select a contract to see its missing minutes.")
        self.timeline_title.setObjectName("timelineTitle")
        gap_box = QtWidgets.QGroupBox(
            "Gaps timeline (trading sessions; red: minutes without a candle)"
        )
        gap_lay = QtWidgets.QVBoxLayout(gap_box)
        gap_lay.addWidget(self.timeline_title)
        gap_lay.addWidget(self.timeline)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(gap_box)
        self.report: ScopedReport | None = None
        self.rows_summary = ""
        self.shown: Timeline | None = None  # the contract on the timeline
        self.started: list[int] = []  # jobs started by "Collect missing"
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.table.doubleClicked.connect(self._open_chart)
        self.tree.currentItemChanged.connect(self._on_finding)
        self.tree.itemDoubleClicked.connect(self._open_chart_of_item)
        self.tabs.currentChanged.connect(lambda _i: self._update_collect())
        self.collect_button.clicked.connect(self._collect)
        self.collect_action.triggered.connect(self._collect)
        self.check_button.clicked.connect(self.schedule_verify)
        self.scope.currentIndexChanged.connect(self.schedule_verify)
        self.timeline.spanClicked.connect(self._open_chart_at)

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
        """The expiry's contracts now, verify's findings when they are ready."""
        key, expiry = self.picker.key, self.picker.chosen
        rows = await self.controller.analysis.quality(key, expiry) if key and expiry else []
        if (key, expiry) != (self.picker.key, self.picker.chosen):
            return  # another expiry was picked meanwhile: its own load shows it
        self.model.set_rows(rows)
        self.table.resizeColumnsToContents()
        self.rows_summary = summary_text(rows)
        self.summary.setText(self.rows_summary)  # with the rows, not when verify starts
        self.show_timeline(None)
        self.schedule_verify()

    def schedule_verify(self) -> None:
        self.controller.schedule(self.verify(), name="quality-verify")

    async def verify(self) -> None:
        """verify's checks of the picked scope, on the database's thread."""
        key, expiry = self.picker.key, self.picker.chosen
        if key is None or expiry is None:
            self._set_report(None)
            return
        self.check_button.setEnabled(False)
        self.summary.setText(f"{self.rows_summary} Checking…")
        every = bool(self.scope.currentData())
        try:
            report = await self.controller.analysis.verify_scope(key, [] if every else [expiry])
        finally:
            self.check_button.setEnabled(True)
        if (key, expiry, every) == (self.picker.key, self.picker.chosen, self.scope.currentData()):
            self._set_report(report)  # else the pick changed meanwhile: its own check follows

    def _set_report(self, report: ScopedReport | None) -> None:
        self.report = report
        self.tree.set_report(report)
        text = self.rows_summary
        if report is not None:
            where = "this expiry" if report.expiries else "every expiry of the underlying"
            found = report.findings
            text += (
                f" verify over {where}: {report.contracts:,} contracts, {report.candles:,} "
                f"candles, {report.windows:,} windows — "
                + (count_text(found) if found else "no finding.")
            )
        self.summary.setText(text.strip())
        self._update_collect()

    # --- selection: findings, contracts, the timeline -------------------------------------
    def targets(self) -> list[ScopedFinding]:
        """What "Collect missing" acts on: the selected finding / contract / expiry on the
        Findings tab, the selected contract's findings on the Contracts tab, else all."""
        found = self.report.findings if self.report is not None else []
        if self.tabs.currentWidget() is self.tree and self.tree.currentItem() is not None:
            return self.tree.findings_at(self.tree.currentItem())
        if self.tabs.currentWidget() is self.table:
            index = self.table.currentIndex()
            q = self.model.data(index, Qt.ItemDataRole.UserRole) if index.isValid() else None
            if q is not None:
                return [f for f in found if f.contract_id == q.contract_id]
        return list(found)

    def _update_collect(self) -> None:
        plan = repairs(self.targets())
        ranges = sum(len(r.windows) if r.windows is not None else 1 for r in plan)
        self.collect_button.setEnabled(bool(plan))
        self.collect_action.setEnabled(bool(plan))
        self.collect_button.setText(
            f"Collect &missing ({ranges} range{'s' if ranges != 1 else ''})"
            if plan
            else "Collect &missing"
        )
        self.collect_button.setToolTip(
            "Fetch exactly the date ranges the selected findings name"
            if plan
            else "Nothing selected that a collection can fix"
        )

    def _on_row(self, current: QtCore.QModelIndex, _previous: QtCore.QModelIndex) -> None:
        q = self.model.data(current, Qt.ItemDataRole.UserRole) if current.isValid() else None
        if q is not None:
            self.schedule_timeline(q.contract_id)
        self._update_collect()

    def _on_finding(self, current: Any, _previous: Any) -> None:
        cid = self.tree.contract_at(current)
        if cid is not None:
            self.schedule_timeline(cid)
        self._update_collect()

    def schedule_timeline(self, contract_id: int) -> None:
        self.controller.schedule(self.load_timeline(contract_id), name="quality-gaps")

    async def load_timeline(self, contract_id: int) -> None:
        self.show_timeline(await self.controller.analysis.timeline(contract_id))

    def show_timeline(self, t: Timeline | None) -> None:
        self.shown = t
        if t is None:
            self.timeline.clear()
            self.timeline_title.setText("Select a contract to see its missing minutes.")
            return
        self.timeline.set_gaps(t.days, t.runs, t.span)
        label = self._label(t.contract_id)
        if t.span is None:
            self.timeline_title.setText(f"{label}: no candle stored.")
            return
        longest = max(t.runs, key=lambda r: r.minutes, default=None)
        longest_text = gap_lines([longest])[0] if longest is not None else ""
        self.timeline_title.setText(
            f"{label}: {len(t.runs):,} runs, {t.missing_minutes:,} minutes without a candle"
            + (f"; the longest {longest_text}" if longest_text else "")
            + " — hover a red mark for its span, click it to chart that time."
        )

    def _label(self, contract_id: int) -> str:
        for q in self.model.rows:
            if q.contract_id == contract_id:
                return q.symbol
        for f in self.report.findings if self.report is not None else []:
            if f.contract_id == contract_id:
                return f.contract
        return f"contract #{contract_id}"

    # --- actions -------------------------------------------------------------------------
    def _open_chart(self, index: QtCore.QModelIndex) -> None:
        q = self.model.data(index, Qt.ItemDataRole.UserRole)
        if q is not None:
            self.open_chart(q.contract_id)

    def _open_chart_of_item(self, item: Any, _column: int) -> None:
        cid = self.tree.contract_at(item)
        if cid is not None:
            self.open_chart(cid, expiry=self.tree.findings_at(item)[0].expiry)

    def _open_chart_at(self, ts: int) -> None:
        if self.shown is not None:
            self.open_chart(self.shown.contract_id, at=ts)

    def open_chart(self, contract_id: int, *, expiry: Any = None, at: int | None = None) -> None:
        window = self.window()
        chart = getattr(window, "chart_page", None)
        key, expiry = self.picker.key, expiry or self.picker.chosen
        if chart is None or key is None:
            return
        window.tabs.setCurrentWidget(chart)  # type: ignore[attr-defined]
        self.controller.schedule(
            chart.show_contract(key, expiry, contract_id, at=at), name="chart-open"
        )

    def _collect(self) -> None:
        findings = [f for f in self.targets() if f.collectable]
        if findings:
            self.controller.schedule(self.collect_missing(findings), name="quality-collect")

    async def collect_missing(self, findings: list[ScopedFinding]) -> list[int]:
        """Start the collections, say so, and check again once they end."""
        jobs = await self.controller.analysis.collect_missing(findings)
        self.started += jobs
        names = ", ".join(str(j) for j in jobs)
        self.summary.setText(f"Collecting the missing ranges: job {names} (see Jobs).")
        for job in jobs:
            await self.controller.jobs.wait(job)
        await self.load_quality()
        return jobs


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
