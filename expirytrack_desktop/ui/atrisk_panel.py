"""The dashboard's "At risk" panel: chosen expiries that are not complete and vanish from
Upstox within the ``at_risk_days`` setting, soonest first, with their last day — the data
that can still be saved. "Collect them now" starts their collections (deadline-first)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING

from expirytrack_desktop.collect.atrisk import AtRiskExpiry
from expirytrack_desktop.ui.qt import QtWidgets, Signal

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

STATE_WORDS = {"no_data": "○ no data", "partial": "◐ partial", "failed": "✖ failed"}


def at_risk_line(r: AtRiskExpiry) -> str:
    when = {0: "today is the last day", 1: "1 day left"}.get(
        r.days_left, f"{r.days_left} days left"
    )
    guess = "" if r.edge_known else " (retention assumed)"
    return (
        f"{r.symbol or r.instrument_key} {r.expiry.isoformat()} — last day "
        f"{r.last_day.isoformat()}{guess}, {when} — {STATE_WORDS.get(r.state, r.state)}"
        + (
            f" {r.contracts_complete}/{r.contracts} contracts complete"
            if r.contracts
            else ", contracts not listed yet"
        )
    )


class AtRiskPanel(QtWidgets.QGroupBox):
    atRisk = Signal(str)  # a notification: something at risk, said once per new set

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("At risk", parent)
        self.controller = controller
        self.setObjectName("atRiskPanel")
        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("atRiskList")
        self.collect_button = QtWidgets.QPushButton("Collect them &now")
        self.collect_button.clicked.connect(self._collect)
        lay = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.collect_button)
        lay.addLayout(row)
        lay.addWidget(self.list)
        self.found: list[AtRiskExpiry] = []
        self._said: frozenset[tuple[str, date]] = frozenset()

    async def refresh(self) -> None:
        days = self.controller.services.settings.at_risk_days
        self.found = await self.controller.analysis.at_risk()
        self.list.clear()
        for r in self.found:
            self.list.addItem(at_risk_line(r))
        # as tall as its lines, up to 5 (then it scrolls): the coverage grid keeps the room
        rows = min(len(self.found), 5)
        row_h = self.list.sizeHintForRow(0) if self.found else 0
        self.list.setFixedHeight(rows * max(row_h, 1) + 2 * self.list.frameWidth() + 2)
        self.list.setVisible(bool(self.found))
        self.collect_button.setVisible(bool(self.found))
        if not self.found:
            self.summary.setText(
                f"Nothing at risk: every chosen expiry that vanishes from Upstox within {days} "
                "days is complete."
            )
            return
        first = self.found[0]
        text = (
            f"{len(self.found)} chosen "
            + (
                "expiry is not complete and vanishes"
                if len(self.found) == 1
                else "expiries are not complete and vanish"
            )
            + f" from Upstox within {days} days; the first, {first.symbol or first.instrument_key} "
            f"{first.expiry.isoformat()}, on {first.last_day.isoformat()}."
        )
        self.summary.setText(text)
        keys = frozenset((r.instrument_key, r.expiry) for r in self.found)
        if not keys <= self._said:
            self._said = keys
            self.atRisk.emit(notification(self.found, days))

    def _collect(self) -> None:
        by_key: dict[str, list[date]] = defaultdict(list)
        for r in self.found:
            by_key[r.instrument_key].append(r.expiry)
        for key, expiries in by_key.items():
            self.controller.schedule(
                self.controller.analysis.collect(key, expiries), name=f"at-risk-{key}"
            )


def notification(found: list[AtRiskExpiry], days: int) -> str:
    """The short form for the status bar and the tray (it fits beside the status bar's
    permanent fields at 1280 px; the panel says the long one)."""
    first = found[0]
    what = "expiry" if len(found) == 1 else "expiries"
    return (
        f"At risk: {len(found)} {what} vanish incomplete within {days} days; first "
        f"{first.symbol or first.instrument_key} {first.expiry.isoformat()} on "
        f"{first.last_day.isoformat()} (Dashboard)"
    )
