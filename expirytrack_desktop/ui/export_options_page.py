"""The export wizard's step 3: format, contract types, strikes, time range, interval."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from expirytrack_desktop.export.api import ExportOptions
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.qt import QtCore, QtGui, QtWidgets
from expirytrack_desktop.ui.wizard_common import WizardPage
from expirytrack_desktop.upstox.models import INTERVALS

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

FORMATS = (
    ("csv", "CSV (OpenAlgo columns)"),
    ("json", "JSON (hierarchical)"),
    ("zip", "ZIP (one CSV per contract + metadata.json)"),
    ("parquet", "Parquet (typed columns)"),
    ("historify", "OpenAlgo Historify (its database, or files for its upload)"),
)


def qdate_to_date(qd: QtCore.QDate) -> date:
    return date(qd.year(), qd.month(), qd.day())


class ExportOptionsPage(WizardPage):
    def __init__(self, controller: Controller) -> None:
        super().__init__(
            controller, "3. Options", "Format, contract types, strikes and time range."
        )
        self.format = QtWidgets.QComboBox()
        self.format.setObjectName("formatCombo")
        for key, label in FORMATS:
            self.format.addItem(label, key)
        self.per_contract = QtWidgets.QCheckBox("One file per contract (in a folder)")
        self.partitioned = QtWidgets.QCheckBox("Parquet dataset partitioned by underlying/expiry")
        self.metadata = QtWidgets.QCheckBox(
            "Include metadata columns (underlying, expiry, strike, type, trading symbol, lot)"
        )
        self.types = {t: QtWidgets.QCheckBox(t) for t in ("CE", "PE", "FUT")}
        types_row = QtWidgets.QHBoxLayout()
        for cb in self.types.values():
            cb.setChecked(True)
            types_row.addWidget(cb)
        types_row.addStretch(1)
        self.strike_min = QtWidgets.QLineEdit()
        self.strike_max = QtWidgets.QLineEdit()
        for e in (self.strike_min, self.strike_max):
            e.setValidator(QtGui.QDoubleValidator(0.0, 1e9, 2))
            e.setPlaceholderText("any")
        strikes = QtWidgets.QHBoxLayout()
        strikes.addWidget(self.strike_min)
        strikes.addWidget(QtWidgets.QLabel("to"))
        strikes.addWidget(self.strike_max)
        self.range_all = QtWidgets.QRadioButton("&All data")
        self.range_last = QtWidgets.QRadioButton("&Last")
        self.range_dates = QtWidgets.QRadioButton("&From")
        self.range_all.setChecked(True)
        self.last_days = QtWidgets.QSpinBox()
        self.last_days.setRange(1, 3650)
        self.last_days.setValue(30)
        self.last_days.setSuffix(" days")
        self.date_from = QtWidgets.QDateEdit(QtCore.QDate.currentDate().addMonths(-3))
        self.date_to = QtWidgets.QDateEdit(QtCore.QDate.currentDate())
        for d in (self.date_from, self.date_to):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        rng = QtWidgets.QGridLayout()
        rng.addWidget(self.range_all, 0, 0)
        rng.addWidget(self.range_last, 1, 0)
        rng.addWidget(self.last_days, 1, 1)
        rng.addWidget(self.range_dates, 2, 0)
        rng.addWidget(self.date_from, 2, 1)
        rng.addWidget(QtWidgets.QLabel("to"), 2, 2)
        rng.addWidget(self.date_to, 2, 3)
        rng.setColumnStretch(4, 1)
        self.interval = QtWidgets.QComboBox()
        for iv in INTERVALS:
            self.interval.addItem(iv, iv)
        form = QtWidgets.QFormLayout(self)
        form.addRow("&Format:", self.format)
        form.addRow("", self.per_contract)
        form.addRow("", self.partitioned)
        form.addRow("", self.metadata)
        form.addRow("Contract types:", types_row)
        form.addRow("Strikes:", strikes)
        form.addRow("Time range:", rng)
        form.addRow("&Interval:", self.interval)
        form.addRow(self.message)
        for w in (
            *self.types.values(),
            self.per_contract,
            self.partitioned,
            self.range_all,
            self.range_last,
            self.range_dates,
        ):
            w.toggled.connect(self._changed)
        for e in (self.strike_min, self.strike_max):
            e.textChanged.connect(self._changed)
        self.format.currentIndexChanged.connect(self._changed)
        self.date_from.dateChanged.connect(self._changed)
        self.date_to.dateChanged.connect(self._changed)

    def _changed(self, *_: object) -> None:
        fmt = self.format.currentData()
        self.partitioned.setEnabled(fmt == "parquet")
        self.per_contract.setEnabled(fmt != "zip")
        self.show_problem()

    def set_options(self, o: ExportOptions) -> None:
        """Show a preset's choices (an open-ended date range shows its given end only)."""
        self.format.setCurrentIndex(max(self.format.findData(o.format), 0))
        self.per_contract.setChecked(o.per_contract)
        self.partitioned.setChecked(o.parquet_partitioned)
        self.metadata.setChecked(o.include_metadata)
        for t, cb in self.types.items():
            cb.setChecked(t in o.contract_types)
        for edit, v in ((self.strike_min, o.strike_min), (self.strike_max, o.strike_max)):
            edit.setText("" if v is None else f"{v:g}")
        if o.last_days is not None:
            self.range_last.setChecked(True)
            self.last_days.setValue(o.last_days)
        elif o.date_from is not None or o.date_to is not None:
            self.range_dates.setChecked(True)
            for when, d in ((self.date_from, o.date_from), (self.date_to, o.date_to)):
                if d is not None:
                    when.setDate(QtCore.QDate(d.year, d.month, d.day))
        else:
            self.range_all.setChecked(True)
        self.interval.setCurrentIndex(max(self.interval.findData(o.interval), 0))

    def options(self, underlyings: list[str], expiries: tuple[date, ...]) -> ExportOptions:
        def num(e: QtWidgets.QLineEdit) -> float | None:
            t = e.text().strip().replace(",", "")
            return float(t) if t else None

        last = self.last_days.value() if self.range_last.isChecked() else None
        dates = self.range_dates.isChecked()
        dfrom = qdate_to_date(self.date_from.date()) if dates else None
        dto = qdate_to_date(self.date_to.date()) if dates else None
        fmt = str(self.format.currentData())
        return ExportOptions(
            underlyings=tuple(underlyings),
            expiries=expiries,
            contract_types=tuple(t for t, cb in self.types.items() if cb.isChecked()),
            strike_min=num(self.strike_min),
            strike_max=num(self.strike_max),
            last_days=last,
            date_from=dfrom,
            date_to=dto,
            interval=str(self.interval.currentData()),
            include_metadata=self.metadata.isChecked(),
            per_contract=self.per_contract.isChecked() and fmt != "zip",
            format=fmt,  # type: ignore[arg-type]
            parquet_partitioned=self.partitioned.isChecked() and fmt == "parquet",
        )

    def problem(self) -> str | None:
        try:
            opts = self.options(["X|x"], (date.today(),))
            opts.validate()
        except ValueError as exc:
            return str(exc)
        except Exception as exc:
            return describe_error(exc)
        return None
