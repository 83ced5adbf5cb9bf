"""Read-only table models: jobs, coverage, export history, selectable lists.

The models hold plain rows (dicts read by the engine's store); they never query the database
themselves, so painting never waits on SQLite. Live progress is batched: the engine's callback
only records the latest event per job and a timer applies them a few times per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from expirytrack_desktop.ui.qt import Qt, QtCore
from expirytrack_desktop.upstox.limiter import RateLimitSpec

ProgressRole = Qt.ItemDataRole.UserRole + 1  # 0..100 (or -1 = unknown) for the delegate
RowRole = Qt.ItemDataRole.UserRole + 2  # the whole row object
_ROOT = QtCore.QModelIndex()  # the invalid parent index, as a shared default

RESUMABLE_STATUSES = frozenset({"paused", "interrupted", "cancelled", "needs_login", "failed"})


def fmt_int(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or seconds != seconds:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def fmt_span(seconds: float) -> str:
    """A rate-limit window: 1 -> '1s', 60 -> '1min', 1800 -> '30min', 3600 -> '1h'."""
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}min"
    return f"{seconds / 3600:g}h"


_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def fmt_per(seconds: float) -> str:
    """A rate-limit window in words: 1 -> 'second', 60 -> 'minute', 1800 -> '30 minutes'."""
    for size, unit in _UNITS:
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return unit if n == 1 else f"{n:,} {unit}s"
    return f"{seconds:g} seconds"


def describe_rate_limit(spec: str) -> str:
    """'50/1,500/60,2000/1800' -> '50 per second · 500 per minute · 2,000 per 30 minutes'."""
    try:
        windows = RateLimitSpec.parse(spec).windows
    except ValueError:
        return spec
    return " · ".join(f"{limit:,} per {fmt_per(seconds)}" for limit, seconds in windows)


def waiting_text(until: float) -> str:
    """'waiting for API budget until 14:03:27' (local time)."""
    return f"waiting for API budget until {datetime.fromtimestamp(until):%H:%M:%S}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def short_ts(text: str | None) -> str:
    """'2026-11-22 00:49:38' or ISO -> '2026-11-22 00:49' (seconds are noise in a table)."""
    if not text:
        return ""
    return text.replace("T", " ")[:16]


@dataclass(slots=True)
class JobRow:
    """One persisted job as the table shows it, plus live figures from progress events."""

    id: int
    underlyings: str = ""
    expiries: str = ""
    status: str = "pending"
    total: int = 0
    done: int = 0
    failed: int = 0
    requests: int = 0
    candles: int = 0
    started_at: str | None = None
    completed_at: str | None = None
    error: str | None = None
    rate: float | None = None  # requests per second, live
    eta: float | None = None  # seconds, live
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> int:
        if self.total <= 0:
            return 100 if self.status == "completed" else 0
        return max(0, min(100, int(100 * (self.done + self.failed) / self.total)))

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE_STATUSES


class ReadOnlyTableModel(QtCore.QAbstractTableModel):
    """A flat table whose cells can be selected, never edited (every table in this app)."""

    def flags(self, index: QtCore.QModelIndex | QtCore.QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


class RowsTableModel(ReadOnlyTableModel):
    """One row per item of ``self._rows`` and one column per title of :meth:`titles`."""

    _rows: Sequence[Any]

    def titles(self) -> Sequence[str]:
        raise NotImplementedError

    def rowCount(self, parent: QtCore.QModelIndex | QtCore.QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QtCore.QModelIndex | QtCore.QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.titles())

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        titles = self.titles()
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(titles)
        ):
            return titles[section]
        return None

    def data(
        self,
        index: QtCore.QModelIndex | QtCore.QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        return self.row_data(self._rows[index.row()], index.column(), role)

    def row_data(self, row: Any, col: int, role: int) -> Any:
        """The value of ``role`` for column ``col`` of ``row`` (a valid cell)."""
        raise NotImplementedError


class JobsModel(RowsTableModel):
    """Persisted jobs, newest first; live progress applied by :meth:`flush` on a timer."""

    COLUMNS = (
        "ID",
        "Underlying",
        "Expiries",
        "Status",
        "Progress",
        "Requests",
        "Candles",
        "Rate",
        "ETA",
        "Errors",
        "Started",
        "Finished",
    )
    PROGRESS_COLUMN = 4

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[JobRow] = []
        self._pending: dict[int, Callable[[JobRow], None]] = {}
        self.budget_until: float | None = None  # the rate limiter holds requests back until
        self.budget_windows: tuple[tuple[int, float], ...] = ()
        self.clock: Callable[[], float] = time.time

    # --- Qt API ---
    def titles(self) -> Sequence[str]:
        return self.COLUMNS

    def row_data(self, row: JobRow, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == ProgressRole and col == self.PROGRESS_COLUMN:
            return row.percent
        if role == RowRole:
            return row
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 3 and row.error:
                return row.error
            if col == 2:
                return row.expiries
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (0, 5, 6, 7, 8, 9):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def set_budget_until(
        self, until: float | None, windows: Sequence[tuple[int, float]] = ()
    ) -> None:
        """The rate limiter holds every job's requests back until ``until`` (None: it does not);
        ``windows`` are its limits, ``(requests, seconds)``, for an ETA that allows for them."""
        self.budget_windows = tuple(windows)
        if until == self.budget_until:
            return
        self.budget_until = until
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(self.COLUMNS) - 1)
            )

    def _waiting(self, row: JobRow) -> float | None:
        """Seconds this running row still waits for API budget (None: not waiting)."""
        if row.status != "running" or self.budget_until is None:
            return None
        return max(0.0, self.budget_until - self.clock())

    def _display(self, row: JobRow, col: int) -> str:
        if col == 0:
            return str(row.id)
        if col == 1:
            return row.underlyings
        if col == 2:
            return row.expiries
        if col == 3:
            if row.status == "interrupted":
                return "interrupted (resumable)"
            if row.status == "needs_login":
                return "paused: log in again"
            if row.extra.get("waiting"):
                return str(row.extra["waiting"])  # "waiting for the network since 14:02, ..."
            if self._waiting(row) is not None and self.budget_until is not None:
                return waiting_text(self.budget_until)  # running, held back
            return row.status
        if col == 4:
            return f"{row.done + row.failed}/{row.total} ({row.percent}%)"
        if col == 5:
            return fmt_int(row.requests)
        if col == 6:
            return fmt_int(row.candles)
        if col == 7:
            return "" if row.rate is None or row.status != "running" else f"{row.rate:.1f}/s"
        if col == 8:
            if row.status != "running":
                return ""
            wait = self._waiting(row)
            # the engine's ETA comes from its recent rate, which a wait freezes: never less
            # than the wait plus what the limits allow for the items left (about a request each)
            eta = row.eta
            if wait is not None:
                left = max(0, row.total - row.done - row.failed)
                paced = max(
                    ((left - 1) // limit * seconds for limit, seconds in self.budget_windows),
                    default=0.0,
                )
                eta = max(row.eta or 0.0, wait + paced)
            return fmt_duration(eta)
        if col == 9:
            return fmt_int(row.failed)
        if col == 10:
            return short_ts(row.started_at)
        if col == 11:
            return short_ts(row.completed_at)
        return ""

    # --- data ---
    def set_rows(self, rows: Sequence[JobRow]) -> None:
        """Replace the rows after a reload from the database, keeping live figures.

        When the same jobs come back in the same order the rows are updated in place
        (one dataChanged), so the view keeps its selection and scroll position.
        """
        live = {r.id: (r.rate, r.eta) for r in self._rows}
        new = list(rows)
        for r in new:
            if r.id in live and r.status == "running" and r.rate is None:
                r.rate, r.eta = live[r.id]
        if [r.id for r in new] == [r.id for r in self._rows]:
            self._rows = new
            if new:
                self.dataChanged.emit(
                    self.index(0, 0), self.index(len(new) - 1, len(self.COLUMNS) - 1)
                )
            return
        self.beginResetModel()
        self._rows = new
        self.endResetModel()

    def rows(self) -> list[JobRow]:
        return list(self._rows)

    def row_of(self, job_id: int) -> int:
        for i, r in enumerate(self._rows):
            if r.id == job_id:
                return i
        return -1

    def job(self, job_id: int) -> JobRow | None:
        i = self.row_of(job_id)
        return self._rows[i] if i >= 0 else None

    def upsert(self, row: JobRow) -> None:
        i = self.row_of(row.id)
        if i >= 0:
            self._rows[i] = row
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))
        else:
            self.beginInsertRows(QtCore.QModelIndex(), 0, 0)
            self._rows.insert(0, row)
            self.endInsertRows()

    def post(self, job_id: int, update: Callable[[JobRow], None]) -> None:
        """Record the latest update for a job (cheap; any thread-safe caller on the GUI thread).

        Only the newest update per job is kept; :meth:`flush` applies it.
        """
        self._pending[job_id] = update

    def drop_pending(self, job_id: int) -> None:
        """Forget a job's unapplied update (its run ended: the database has the last word)."""
        self._pending.pop(job_id, None)

    def flush(self) -> int:
        """Apply pending updates and emit one dataChanged per changed row; returns rows changed."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        changed = 0
        for job_id, update in pending.items():
            i = self.row_of(job_id)
            if i < 0:
                continue
            update(self._rows[i])
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))
            changed += 1
        return changed


COVERAGE_LABELS = {
    "complete": "✔ complete",
    "partial": "◐ partial",
    "none": "○ no data",
    "failed": "✖ failed",
    "empty": "– empty",
    "": "",
}


class RecordsModel(RowsTableModel):
    """A generic read-only table over a list of dicts with declared (key, title) columns."""

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        formatters: dict[str, Callable[[Any], str]] | None = None,
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._columns = list(columns)
        self._titles = [title for _, title in self._columns]
        self._fmt = formatters or {}
        self._rows: list[dict[str, Any]] = []

    def set_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._rows = [dict(r) for r in rows]
        self.endResetModel()

    def row(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    def titles(self) -> Sequence[str]:
        return self._titles

    def row_data(self, row: dict[str, Any], col: int, role: int) -> Any:
        key = self._columns[col][0]
        value = row.get(key)
        if role == Qt.ItemDataRole.DisplayRole:
            fmt = self._fmt.get(key)
            if fmt is not None:
                return fmt(value)
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.ToolTipRole:
            return None if value is None else str(value)
        if role == RowRole:
            return row
        return None
