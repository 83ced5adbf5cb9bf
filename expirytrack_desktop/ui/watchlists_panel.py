"""The keep-complete watchlists on the Schedules page: what each keeps, how complete it is,
its next scheduled run and last result, and Run now.

The same data as ``expirytrack watch list`` (``collect.watchlist.summaries``, read on the
database's writer thread). Run now starts ``expirytrack watch run NAME`` as its own process,
exactly as a scheduled run would, so it goes on if the window closes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.collect.watchlist import WatchSummary, summaries
from expirytrack_desktop.schedule.manage import ScheduleEntry, watchlist_next_runs
from expirytrack_desktop.ui.models import RowsTableModel
from expirytrack_desktop.ui.qt import Qt, QtCore, QtWidgets
from expirytrack_desktop.ui.widgets import rows_table, share_width

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

HEADERS = ("Watchlist", "What", "Complete", "Next run", "Last result")


@dataclass(frozen=True, slots=True)
class WatchRow:
    summary: WatchSummary
    next_run: datetime | None


class WatchlistsModel(RowsTableModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[WatchRow] = []

    @property
    def rows(self) -> list[WatchRow]:
        return self._rows

    def titles(self) -> tuple[str, ...]:
        return HEADERS

    def set_rows(self, rows: list[WatchRow]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def row_data(self, r: WatchRow, col: int, role: int) -> Any:
        wl, c = r.summary.watchlist, r.summary.completeness
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return wl.name
            if col == 1:
                return r.summary.what
            if col == 2:
                risk = f", {c.at_risk} at risk" if c.at_risk else ""
                return f"{c.complete}/{c.total} expiries{risk}" if c.total else "not run yet"
            if col == 3:
                return r.next_run.strftime("%a %d %b %H:%M") if r.next_run else "—"
            result = wl.last_result or {}
            when = (wl.last_run_at or "")[:16]
            return f"{when} — {result.get('summary', '?')}" if when else "never run"
        if role == Qt.ItemDataRole.ToolTipRole and col in (1, len(HEADERS) - 1):
            return self.row_data(r, col, Qt.ItemDataRole.DisplayRole)  # the whole text
        if role == Qt.ItemDataRole.UserRole:
            return r
        return None


class WatchlistsPanel(QtWidgets.QWidget):
    """The watchlists table and its Run now button (``watch add`` creates them)."""

    def __init__(
        self,
        controller: Controller,
        schedule_argv: Callable[[str], list[str]],
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.schedule_argv = schedule_argv  # ScheduleManager.run_argv: how this app is started
        self.setObjectName("watchlistsPanel")
        self.model = WatchlistsModel(self)
        self.table = rows_table(self.model, "watchlistsTable")
        share_width(self.table, 1, len(HEADERS) - 1)
        self.btn_new = QtWidgets.QPushButton("New watch&list…")
        self.btn_run = QtWidgets.QPushButton("Run &watchlist now")
        self.note = QtWidgets.QLabel("")
        self.note.setObjectName("watchlistsNote")
        self.note.setWordWrap(True)
        title = QtWidgets.QLabel("<b>Keep-complete watchlists</b>")
        top = QtWidgets.QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.btn_new)
        top.addWidget(self.btn_run)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)
        self.btn_run.clicked.connect(self.run_selected)
        self.btn_new.clicked.connect(self.new_watchlist)
        self.next_runs: dict[str, datetime] = {}
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.runs: list[subprocess.Popen[bytes]] = []
        self.loaded = 0  # how many times the rows were loaded (tests wait on it)
        self._update_buttons()

    def refresh(self, entries: list[ScheduleEntry]) -> None:
        """Load the watchlists in the background (next runs from ``entries``)."""
        self.next_runs = watchlist_next_runs(entries)
        self.controller.schedule(self._load(self.next_runs), name="watchlists")

    def new_watchlist(self) -> None:
        """The New watchlist dialog (non-blocking; it stays open on an error)."""
        from expirytrack_desktop.ui.watchlist_dialog import WatchlistDialog

        rt = self.controller.runtime
        if rt is None:
            self.note.setText("The database is not open yet.")
            return
        dialog = WatchlistDialog(self, rt.db, self.controller.services.settings, self._saved)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.open()

    def _saved(self, wl: Any) -> None:
        self.note.setText(
            f"Saved watchlist {wl.name}; Run watchlist now collects it, "
            f"`expirytrack watch schedule {wl.name} --at HH:MM` runs it daily."
        )
        self.controller.schedule(self._load(self.next_runs), name="watchlists")

    async def _load(self, next_runs: dict[str, datetime]) -> None:
        rt = await self.controller.host.ready()
        settings = self.controller.services.settings
        today = self.controller.analysis.today()
        found = await rt.db.run(summaries, rt.db, today=today, within_days=settings.at_risk_days)
        current = self.selected()
        self.model.set_rows([WatchRow(s, next_runs.get(s.watchlist.name)) for s in found])
        for row, r in enumerate(self.model.rows):
            if current is not None and r.summary.watchlist.name == current:
                self.table.selectRow(row)
        self.runs = [p for p in self.runs if p.poll() is None]
        if not found:
            self.note.setText(
                "No watchlists yet: `expirytrack watch add NAME -i SYMBOL …` (or --all-stocks) "
                "saves one; `expirytrack watch schedule NAME --at HH:MM` runs it daily."
            )
        else:
            if not self.note.text().startswith("Saved watchlist"):
                self.note.setText(f"{len(found)} watchlist(s); running now: {len(self.runs)}.")
        self.loaded += 1
        self._update_buttons()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        r = self.model.data(rows[0], Qt.ItemDataRole.UserRole)
        return r.summary.watchlist.name if r is not None else None

    def _update_buttons(self) -> None:
        self.btn_run.setEnabled(self.selected() is not None)

    def run_argv(self, name: str) -> list[str]:
        """``<expirytrack> watch run NAME --db <this window's database>`` (the program part
        from the command line the OS scheduler would run: ``... schedule run NAME``)."""
        services = self.controller.services
        program = self.schedule_argv(name)[:-3]
        argv = [*program, "watch", "run", name, "--db", str(services.db_path)]
        return [*argv, "--demo"] if services.demo else argv

    def run_selected(self) -> None:
        name = self.selected()
        if name is None:
            return
        argv = self.run_argv(name)
        quiet = subprocess.DEVNULL
        self.runs.append(subprocess.Popen(argv, stdin=quiet, stdout=quiet, stderr=quiet))
        self.note.setText(f"Started watchlist {name} now (its result appears under Last result).")
