"""Option chain page: an expiry's chain as it stood at any past minute.

Underlying, expiry, day and a minute slider (←/→ one minute, PgUp/PgDn one trading day); one
row per strike with the call side left and the put side right, the ATM row highlighted, the
forward, time to expiry, PCR and max pain above, "Export CSV" for the snapshot. The numbers
are :func:`analysis.chain.build_chain`'s, the same as ``expirytrack chain``.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.analysis.chain import ChainRow, ChainSnapshot
from expirytrack_desktop.analysis.chain_table import snapshot_rows, write_csv
from expirytrack_desktop.analysis.minutes import SESSION_OPEN, step_minute, step_trading_day
from expirytrack_desktop.fsutil import atomic_write_text
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.ui.expiry_picker import ExpiryPicker
from expirytrack_desktop.ui.models import RowsTableModel
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, asyncWrap

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

# (header, side, field, format)
COLUMNS = (
    ("OI", "ce", "oi", "{:,}"),
    ("OI chg", "ce", "oi_change", "{:+,}"),
    ("Volume", "ce", "volume", "{:,}"),
    ("IV", "ce", "iv", "{:.2%}"),
    ("Delta", "ce", "delta", "{:.3f}"),
    ("LTP", "ce", "ltp", "{:,.2f}"),
    ("Strike", "", "strike", "{:g}"),
    ("LTP", "pe", "ltp", "{:,.2f}"),
    ("Delta", "pe", "delta", "{:.3f}"),
    ("IV", "pe", "iv", "{:.2%}"),
    ("Volume", "pe", "volume", "{:,}"),
    ("OI chg", "pe", "oi_change", "{:+,}"),
    ("OI", "pe", "oi", "{:,}"),
)
TITLES = tuple(f"{side.upper()} {title}".strip() for title, side, _, _ in COLUMNS)
SESSION_MINUTES = 375


class ChainModel(RowsTableModel):
    """Read-only rows of a :class:`ChainSnapshot`."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.snap: ChainSnapshot | None = None
        self._rows: list[ChainRow] = []
        self.atm_brush = QtGui.QBrush(QtGui.QColor(250, 215, 90, 110))
        self.itm_brush = QtGui.QBrush(QtGui.QColor(120, 160, 230, 40))

    def set_snapshot(self, snap: ChainSnapshot | None) -> None:
        self.beginResetModel()
        self.snap = snap
        self._rows = list(snap.rows) if snap else []
        self.endResetModel()

    def titles(self) -> tuple[str, ...]:
        return TITLES

    def row_data(self, row: ChainRow, col: int, role: int) -> Any:
        if self.snap is None:
            return None
        _, side, field, fmt = COLUMNS[col]
        if role == Qt.ItemDataRole.DisplayRole:
            if not side:
                return fmt.format(row.strike)
            contract = row.ce if side == "ce" else row.pe
            if contract is None or contract.ltp is None:
                return ""
            value = getattr(contract, field)
            return "" if value is None else fmt.format(value)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            if row.strike == self.snap.atm_strike:
                return self.atm_brush
            fwd = self.snap.forward
            if fwd is not None and side and (row.strike < fwd) == (side == "ce"):
                return self.itm_brush  # in the money
        if role == Qt.ItemDataRole.ToolTipRole and side:
            contract = row.ce if side == "ce" else row.pe
            return contract.symbol if contract else None
        return None


class ChainPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("chainPage")
        self.picker = ExpiryPicker(controller, self.load_days, "chain")
        self.underlying, self.expiry = self.picker.underlying, self.picker.expiry
        self.day = QtWidgets.QDateEdit()
        self.day.setCalendarPopup(True)
        self.day.setDisplayFormat("yyyy-MM-dd")
        self.slider = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SESSION_MINUTES - 1)
        self.slider.setPageStep(15)
        self.time_label = QtWidgets.QLabel("09:15")
        self.export_button = QtWidgets.QPushButton("Export CS&V…")
        self.collect_button = QtWidgets.QPushButton("Collect i&t")
        self.collect_button.hide()
        top = QtWidgets.QHBoxLayout()
        self.picker.add_to(top)
        for label, widget in (("Da&y", self.day),):
            lab = QtWidgets.QLabel(label)
            lab.setBuddy(widget)
            top.addWidget(lab)
            top.addWidget(widget)
        top.addWidget(self.slider, 1)
        top.addWidget(self.time_label)
        top.addWidget(self.export_button)
        self.header = QtWidgets.QLabel("Pick an expiry.")
        self.header.setObjectName("chainHeader")
        self.header.setWordWrap(True)
        self.model = ChainModel(self)
        self.table = QtWidgets.QTableView()
        self.table.setObjectName("chainTable")
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setTabKeyNavigation(False)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.header)
        lay.addWidget(self.collect_button, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.table, 1)
        self.snap: ChainSnapshot | None = None
        self.days: list[date] = []
        self._busy = False
        self._wanted: datetime | None = None
        self.day.dateChanged.connect(lambda _d: self.request(self.minute()))
        self.slider.valueChanged.connect(lambda _v: self.request(self.minute()))
        self.export_button.clicked.connect(self.on_export)
        self.collect_button.clicked.connect(self.on_collect)
        for key, slot in (
            (Qt.Key.Key_Left, lambda: self.step(-1)),
            (Qt.Key.Key_Right, lambda: self.step(1)),
            (Qt.Key.Key_PageUp, lambda: self.step_day(-1)),
            (Qt.Key.Key_PageDown, lambda: self.step_day(1)),
        ):
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self.picker.loaded:
            self.controller.schedule(self.refresh(), name="chain-refresh")

    async def refresh(self) -> None:
        if not await self.picker.refresh():
            self.header.setText("Nothing collected yet: collect an expiry, then replay its chain.")

    async def load_days(self) -> None:
        key, expiry = self.picker.key, self.picker.chosen
        self.days = (
            await self.controller.analysis.trading_days(key, expiry) if key and expiry else []
        )
        self.snap = None
        if not self.days:
            self.model.set_snapshot(None)
            self.header.setText(
                f"No candles stored for {self.underlying.currentText()} "
                f"{self.expiry.currentText()} yet."
            )
            self.collect_button.setVisible(expiry is not None)
            return
        self.collect_button.hide()
        last = self.days[-1]
        self.day.blockSignals(True)
        self.day.setDateRange(_qdate(self.days[0]), _qdate(last))
        self.day.setDate(_qdate(last))
        self.day.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setValue(75)  # 10:30, a liquid minute
        self.slider.blockSignals(False)
        await self.show_minute(self.minute())

    # --- minute navigation ---------------------------------------------------------------
    def minute(self) -> datetime:
        day = self.day.date()
        start = datetime(day.year(), day.month(), day.day(), 9, 15, tzinfo=IST)
        return start + timedelta(minutes=self.slider.value())

    def set_minute(self, minute: datetime) -> None:
        local = minute.astimezone(IST)
        self.day.blockSignals(True)
        self.slider.blockSignals(True)
        self.day.setDate(_qdate(local.date()))
        open_ = datetime.combine(local.date(), SESSION_OPEN, tzinfo=IST)
        self.slider.setValue(int((local - open_).total_seconds() // 60))
        self.day.blockSignals(False)
        self.slider.blockSignals(False)

    def step(self, minutes: int) -> None:
        target = step_minute(self.shown_or_current(), minutes, self.days)
        self.set_minute(target)
        self.request(target)

    def step_day(self, days: int) -> None:
        target = step_trading_day(self.shown_or_current(), days, self.days)
        self.set_minute(target)
        self.request(target)

    def shown_or_current(self) -> datetime:
        if self.snap is not None and self.snap.when.minute is not None:
            return self.snap.when.minute
        return self.minute()

    def request(self, minute: datetime) -> None:
        """Show ``minute``; while a snapshot is being built only the latest request is kept."""
        self._wanted = minute
        if not self._busy:
            self.controller.schedule(self._drain(), name="chain-minute")

    async def _drain(self) -> None:
        self._busy = True
        try:
            while self._wanted is not None:
                minute, self._wanted = self._wanted, None
                await self.show_minute(minute)
        finally:
            self._busy = False

    async def show_minute(self, minute: datetime) -> None:
        key, expiry = self.picker.key, self.picker.chosen
        if key is None or expiry is None:
            return
        snap = await self.controller.analysis.chain(key, expiry, minute, previous=self.snap)
        self.snap = snap
        self.model.set_snapshot(snap)
        if snap.when.minute is not None and snap.when.minute != minute:
            self.set_minute(snap.when.minute)
        self.time_label.setText(self.minute().strftime("%H:%M"))
        self.header.setText(header_text(snap))
        if snap.atm_strike is not None:
            atm = next(i for i, r in enumerate(snap.rows) if r.strike == snap.atm_strike)
            self.table.scrollTo(
                self.model.index(atm, 6), QtWidgets.QAbstractItemView.ScrollHint.PositionAtCenter
            )

    # --- actions -------------------------------------------------------------------------
    def on_export(self) -> None:
        self.controller.schedule(self.export_csv(), name="chain-export")

    async def export_csv(self, path: Path | None = None) -> Path | None:
        snap = self.snap
        if snap is None or snap.when.minute is None:
            return None
        if path is None:
            folder = self.controller.services.export_dir
            folder.mkdir(parents=True, exist_ok=True)
            name = (
                f"chain_{self.underlying.currentText()}_{snap.expiry:%Y%m%d}_"
                f"{snap.when.minute:%Y%m%d_%H%M}.csv"
            )
            chosen, _ = await asyncWrap(
                lambda: QtWidgets.QFileDialog.getSaveFileName(
                    self, "Export the chain snapshot", str(folder / name), "CSV (*.csv)"
                )
            )
            if not chosen:
                return None
            path = Path(chosen)
        text = io.StringIO(newline="")
        write_csv(snapshot_rows(snap), text)
        atomic_write_text(path, text.getvalue())  # never a half-written file
        return path

    def on_collect(self) -> None:
        key, expiry = self.picker.key, self.picker.chosen
        if key is not None and expiry is not None:
            self.controller.schedule(
                self.controller.analysis.collect(key, [expiry]), name="chain-collect"
            )


def _qdate(d: date) -> QtCore.QDate:
    return QtCore.QDate(d.year, d.month, d.day)


def header_text(snap: ChainSnapshot) -> str:
    if snap.when.minute is None:
        return f"No stored data at or before this minute ({snap.when.note})."
    parts = [snap.when.minute.strftime("%a %d %b %Y %H:%M IST")]
    if snap.when.note:
        parts.append(f"<b>{snap.when.note}</b>")
    if snap.forward is not None:
        parts.append(f"forward {snap.forward:,.2f} ({snap.forward_source})")
    else:
        parts.append("forward unknown (no future or call/put pair traded that day): no IV")
    if snap.t_years is not None:
        parts.append(f"{snap.t_years * 365:.2f} days to expiry")
    parts.append(f"rate {snap.rate:.2%}")
    if snap.atm_strike is not None:
        parts.append(f"ATM {snap.atm_strike:g}")
    if snap.pcr is not None:
        parts.append(f"PCR {snap.pcr:.2f}")
    if snap.max_pain is not None:
        parts.append(f"max pain {snap.max_pain:g}")
    return " · ".join(parts)
