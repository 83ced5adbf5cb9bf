"""Schedules page: the scheduled collections — list, create, edit, remove, run now — and the
keep-complete watchlists (:mod:`.watchlists_panel`).

The same :class:`schedule.manage.ScheduleManager` as ``expirytrack schedule``: a schedule made
here is installed into the OS scheduler and runs without the window. "Run now" starts
``expirytrack schedule run NAME`` as its own process, exactly as the OS scheduler would. When the
next run falls after the access token's 03:30 IST expiry, the page says so and the window's tray
icon asks to log in before it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.export.errors import ExportError
from expirytrack_desktop.schedule import Schedule, ScheduleError, parse_days
from expirytrack_desktop.schedule.manage import ScheduleEntry, ScheduleManager
from expirytrack_desktop.schedule.model import DAY_NAMES, days_text
from expirytrack_desktop.ui.models import RowsTableModel
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets
from expirytrack_desktop.ui.watchlists_panel import WatchlistsPanel
from expirytrack_desktop.ui.widgets import form_dialog_layout, rows_table, share_width

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

HEADERS = ("Name", "What", "When (local)", "Next run", "Installed", "Last result")


class SchedulesModel(RowsTableModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ScheduleEntry] = []
        self.token_expiry: datetime | None = None
        self.warn = QtGui.QBrush(QtGui.QColor(230, 170, 20, 90))

    @property
    def entries(self) -> list[ScheduleEntry]:
        return self._rows

    def titles(self) -> tuple[str, ...]:
        return HEADERS

    def set_entries(self, entries: list[ScheduleEntry], token_expiry: datetime | None) -> None:
        self.beginResetModel()
        self._rows = entries
        self.token_expiry = token_expiry
        self.endResetModel()

    def needs_login(self, e: ScheduleEntry) -> bool:
        """The run would start with no valid token (none, or it expires at 03:30 IST before)."""
        return e.next_run is not None and (
            self.token_expiry is None or e.next_run >= self.token_expiry
        )

    def row_data(self, e: ScheduleEntry, col: int, role: int) -> Any:
        s = e.schedule
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return s.name
            if col == 1:
                return "; ".join(t for t in (s.what_text(), s.exports_text()) if t)
            if col == 2:
                return s.when_text()
            if col == 3:
                if e.next_run is None:
                    return "—"
                text = e.next_run.strftime("%a %d %b %H:%M")
                return text + ("  (log in before it)" if self.needs_login(e) else "")
            if col == 4:
                return s.backend or "no (stored only)"
            return last_result(e.last)
        if role == Qt.ItemDataRole.ToolTipRole and col in (1, len(HEADERS) - 1):
            return self.row_data(e, col, Qt.ItemDataRole.DisplayRole)  # the whole text
        if role == Qt.ItemDataRole.BackgroundRole and col == 3 and self.needs_login(e):
            return self.warn
        if role == Qt.ItemDataRole.UserRole:
            return e
        return None


def last_result(state: dict[str, Any] | None) -> str:
    if not state:
        return "never run"
    when = (state.get("finished_at") or "")[:16].replace("T", " ")
    summary = state.get("summary") or state.get("outcome") or f"exit {state.get('exit_code')}"
    return f"{when} — {summary}"


class ScheduleDialog(QtWidgets.QDialog):
    """Create or edit one schedule (the options of ``expirytrack schedule add``)."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None,
        s: Schedule | None,
        on_save: Callable[[Schedule], str | None],
        presets: Sequence[str] = (),
    ) -> None:
        super().__init__(parent)
        self.on_save = on_save
        self.setWindowTitle("Edit schedule" if s else "New schedule")
        self.name = QtWidgets.QLineEdit(s.name if s else "")
        self.name.setReadOnly(s is not None)
        self.instruments = QtWidgets.QLineEdit(
            ", ".join(s.instruments) if s else "NIFTY, BANKNIFTY"
        )
        self.instruments.setToolTip("Symbols or instrument keys, separated by commas")
        self.times = QtWidgets.QLineEdit(", ".join(s.times) if s else "16:30")
        self.days = [QtWidgets.QCheckBox(name.title()) for name in DAY_NAMES]
        for i, box in enumerate(self.days):
            box.setChecked(i in (s.days if s else range(5)))
        self.all_expiries = QtWidgets.QCheckBox("Every expiry the API offers at run time")
        self.expiries = QtWidgets.QLineEdit(", ".join(s.expiries or []) if s else "")
        self.expiries.setPlaceholderText("YYYY-MM-DD, …")
        self.all_expiries.setChecked(s is None or s.expiries is None)
        self.expiries.setEnabled(not self.all_expiries.isChecked())
        self.all_expiries.toggled.connect(lambda on: self.expiries.setEnabled(not on))
        self.types = QtWidgets.QLineEdit(",".join(s.types) if s else "CE,PE,FUT")
        self.months = QtWidgets.QSpinBox()
        self.months.setRange(0, 12)
        self.months.setSpecialValueText("settings' default")
        self.months.setValue(s.months or 0 if s else 0)
        self.email = QtWidgets.QLineEdit(", ".join(s.notify_email) if s else "")
        self.email.setPlaceholderText("the notify_to setting")
        self._exports(s, presets)
        form = QtWidgets.QFormLayout()
        form.addRow("&Name", self.name)
        form.addRow("&Underlyings", self.instruments)
        form.addRow("&At (HH:MM, local)", self.times)
        row = QtWidgets.QHBoxLayout()
        for box in self.days:
            row.addWidget(box)
        form.addRow("Days", row)
        form.addRow("", self.all_expiries)
        form.addRow("E&xpiries", self.expiries)
        form.addRow("Contract &types", self.types)
        form.addRow("&Months of history", self.months)
        form.addRow("E-&mail", self.email)
        preset = QtWidgets.QHBoxLayout()
        preset.addWidget(self.export_preset, 1)
        preset.addWidget(self.export_new)
        label = QtWidgets.QLabel("Then &export preset")
        label.setBuddy(self.export_preset)
        form.addRow(label, preset)
        mirror = QtWidgets.QHBoxLayout()
        mirror.addWidget(self.mirror, 1)
        mirror.addWidget(self.mirror_browse)
        label = QtWidgets.QLabel("Then Parquet mi&rror")  # a row of a layout: no buddy itself
        label.setBuddy(self.mirror)
        form.addRow(label, mirror)
        self.error = form_dialog_layout(self, form, "scheduleError")
        self.original = s

    def _exports(self, s: Schedule | None, presets: Sequence[str]) -> None:
        """What runs after each collection: a saved export preset, a Parquet mirror folder."""
        self.export_preset = QtWidgets.QComboBox()
        self.export_preset.addItem("none", None)
        current = s.export_preset if s else None
        for name in sorted({*presets, *([current] if current else [])}):
            self.export_preset.addItem(name, name)
        self.export_preset.setCurrentIndex(max(0, self.export_preset.findData(current)))
        self.export_preset.setToolTip("An export saved in the export wizard (Save as preset…)")
        self.export_new = QtWidgets.QCheckBox("&only what is new")
        self.export_new.setToolTip(
            "Only the expiries whose candles changed since this preset's last scheduled export"
            " (the first run: all it selects); the preset must write into a folder"
        )
        self.export_new.setChecked(bool(s and s.export_new))
        self.export_preset.currentIndexChanged.connect(self._preset_chosen)
        self._preset_chosen()
        self.mirror = QtWidgets.QLineEdit((s.export_mirror or "") if s else "")
        self.mirror.setPlaceholderText("none (a folder kept in step with the collected data)")
        self.mirror_browse = QtWidgets.QPushButton("Bro&wse…")
        self.mirror_browse.clicked.connect(self._pick_mirror)

    def _preset_chosen(self) -> None:
        self.export_new.setEnabled(self.export_preset.currentData() is not None)

    def _pick_mirror(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Parquet mirror folder", self.mirror.text().strip()
        )
        if folder:
            self.mirror.setText(folder)

    def accept(self) -> None:
        try:
            problem = self.on_save(self.schedule())
        except (ScheduleError, ValueError) as exc:
            problem = str(exc)
        if problem:
            self.error.setText(problem)
            return
        super().accept()

    def schedule(self) -> Schedule:
        """The schedule typed in (ScheduleError with a clear message when something is off)."""
        days = [i for i, box in enumerate(self.days) if box.isChecked()]
        if not days:
            raise ScheduleError("choose at least one day")
        base = self.original
        s = Schedule(
            name=self.name.text().strip() or "collect",
            instruments=_split(self.instruments.text()),
            times=_split(self.times.text()),
            days=list(parse_days(days_text(days))),
            expiries=None if self.all_expiries.isChecked() else _split(self.expiries.text()),
            interval=base.interval if base else None,
            months=self.months.value() or None,
            types=[t.upper() for t in _split(self.types.text())],
            notify_email=_split(self.email.text()),
            export_preset=self.export_preset.currentData(),
            export_new=self.export_new.isEnabled() and self.export_new.isChecked(),
            export_mirror=self.mirror.text().strip() or None,
        )
        if base is not None:  # keep all this dialog does not show (a watchlist, retries, ...)
            for f in fields(Schedule):
                if f.name not in _SHOWN:
                    setattr(s, f.name, getattr(base, f.name))
        return s.validate()


_SHOWN = {"name", "instruments", "times", "days", "expiries", "types", "months",
          "notify_email", "export_preset", "export_new", "export_mirror"}  # fmt: skip


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


class SchedulesPage(QtWidgets.QWidget):
    needsLogin = QtCore.Signal(str)  # a message for the tray: log in before the next run

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("schedulesPage")
        self.manager = ScheduleManager(controller.services.paths)
        self.model = SchedulesModel(self)
        self.table = rows_table(self.model, "schedulesTable")
        share_width(self.table, 1, len(HEADERS) - 1)
        self.btn_new = QtWidgets.QPushButton("Ne&w…")
        self.btn_edit = QtWidgets.QPushButton("Ed&it…")
        self.btn_remove = QtWidgets.QPushButton("Re&move")
        self.btn_run = QtWidgets.QPushButton("Run n&ow")
        self.note = QtWidgets.QLabel("")
        self.note.setObjectName("schedulesNote")
        self.note.setWordWrap(True)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.btn_new, self.btn_edit, self.btn_remove, self.btn_run):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(buttons)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)
        self.watchlists = WatchlistsPanel(controller, self.manager.run_argv, self)
        lay.addWidget(self.watchlists, 1)
        self.btn_new.clicked.connect(lambda: self.edit(None))
        self.btn_edit.clicked.connect(lambda: self.edit(self.selected()))
        self.btn_remove.clicked.connect(self.remove_selected)
        self.btn_run.clicked.connect(self.run_selected)
        self.table.doubleClicked.connect(lambda _i: self.edit(self.selected()))
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(30_000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.runs: list[subprocess.Popen[bytes]] = []
        self._warned: set[tuple[str, datetime]] = set()
        self._update_buttons()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def schedule_refresh(self) -> None:
        self.refresh()

    def token_expiry(self) -> datetime | None:
        return self.controller.auth.token_expiry()

    def refresh(self) -> None:
        try:
            entries = self.manager.entries()
        except ScheduleError as exc:
            self.note.setText(str(exc))
            return
        current = self.selected()
        self.model.set_entries(entries, self.token_expiry())
        self.watchlists.refresh(entries)
        if current is not None:
            for row, e in enumerate(entries):
                if e.schedule.name == current.name:
                    self.table.selectRow(row)
        self.runs = [p for p in self.runs if p.poll() is None]
        late = [e for e in entries if self.model.needs_login(e)]
        if not entries:
            self.note.setText(
                "No scheduled collections yet: New… makes one; it runs without the "
                "window, from the OS scheduler."
            )
        elif late:
            name, when = min((e.next_run, e.schedule.name) for e in late if e.next_run)[::-1]
            text = (
                f"Schedule {name} runs at {when:%a %H:%M} (local), after the access token "
                "expires (03:30 IST): log in before it, or the run stops asking for a login."
            )
            self.note.setText(text)
            if (name, when) not in self._warned:
                self._warned.add((name, when))
                self.needsLogin.emit(text)
        else:
            self.note.setText(f"{len(entries)} schedule(s); running now: {len(self.runs)}.")
        self._update_buttons()

    def selected(self) -> Schedule | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        e = self.model.data(rows[0], Qt.ItemDataRole.UserRole)
        return e.schedule if e is not None else None

    def _update_buttons(self) -> None:
        has = self.selected() is not None
        for b in (self.btn_edit, self.btn_remove, self.btn_run):
            b.setEnabled(has)

    def edit(self, s: Schedule | None) -> None:
        """Open the dialog (non-blocking); Save installs, and keeps it open on an error."""
        dialog = ScheduleDialog(self, s, self._save, self._preset_names())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(self.refresh)
        self.dialog = dialog
        dialog.open()

    def _preset_names(self) -> list[str]:
        from expirytrack_desktop.export.presets import load_presets, presets_path

        try:
            return list(load_presets(presets_path(self.controller.services.paths.config_dir)))
        except ExportError:  # an unreadable presets file: the wizard says so; none here
            return []

    def _save(self, s: Schedule) -> str | None:
        from expirytrack_desktop.schedule.exports import check_exports

        try:
            check_exports(s, self.controller.services.paths.config_dir)
            done = self.manager.add(s)
        except (ScheduleError, ExportError, ValueError) as exc:
            return str(exc)
        where = f"installed into {done.backend}" if done.backend else "stored"
        self.note.setText(f"Saved {done.schedule.name}; {where}.")
        return None

    def remove_selected(self) -> None:
        s = self.selected()
        if s is None:
            return
        answer = QtWidgets.QMessageBox.question(
            self, "Remove schedule", f"Remove the schedule {s.name} and uninstall it?"
        )
        if answer != QtWidgets.QMessageBox.StandardButton.Yes:
            return
        problems = self.manager.remove(s.name)
        self.refresh()
        self.note.setText(
            f"Removed {s.name}." + (f" Warnings: {'; '.join(problems)}" if problems else "")
        )

    def run_selected(self) -> None:
        s = self.selected()
        if s is None:
            return
        argv = self.manager.run_argv(s.name)
        quiet = subprocess.DEVNULL
        self.runs.append(subprocess.Popen(argv, stdin=quiet, stdout=quiet, stderr=quiet))
        self.note.setText(f"Started {s.name} now (its result appears under Last result).")
