"""Dashboard: database counts, coverage per underlying × expiry, API usage."""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.atrisk_panel import AtRiskPanel
from expirytrack_desktop.ui.coverage_view import CoverageMonthsView
from expirytrack_desktop.ui.models import COVERAGE_LABELS, fmt_bytes, fmt_int, fmt_span
from expirytrack_desktop.ui.qt import QtCore, QtGui, QtWidgets

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)


def coverage_colours(palette: QtGui.QPalette) -> dict[str, QtGui.QBrush]:
    """Tints blended into the palette's base colour, so text stays readable in dark mode."""
    base = palette.color(QtGui.QPalette.ColorRole.Base)
    dark = base.lightness() < 128

    def tint(hue_colour: QtGui.QColor, amount: float) -> QtGui.QBrush:
        a = amount * (1.4 if dark else 1.0)
        r = base.red() + (hue_colour.red() - base.red()) * a
        g = base.green() + (hue_colour.green() - base.green()) * a
        b = base.blue() + (hue_colour.blue() - base.blue()) * a
        return QtGui.QBrush(QtGui.QColor(int(r), int(g), int(b)))

    return {
        "complete": tint(QtGui.QColor(40, 170, 80), 0.35),
        "partial": tint(QtGui.QColor(230, 170, 20), 0.40),
        "failed": tint(QtGui.QColor(220, 50, 50), 0.40),
        "none": QtGui.QBrush(base),
        "empty": tint(QtGui.QColor(128, 128, 128), 0.20),
    }


class StatCard(QtWidgets.QFrame):
    def __init__(self, title: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        lay = QtWidgets.QVBoxLayout(self)
        self.value = QtWidgets.QLabel("–")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.value.setFont(font)
        self.title = QtWidgets.QLabel(title)
        lay.addWidget(self.value)
        lay.addWidget(self.title)

    def set_value(self, text: str) -> None:
        self.value.setText(text)


class DashboardPage(QtWidgets.QWidget):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("dashboardPage")
        self.cards = {
            "underlyings": StatCard("Underlyings"),
            "expiries": StatCard("Expiries collected / known"),
            "contracts": StatCard("Contracts"),
            "candles": StatCard("Candles"),
            "db_size": StatCard("Database size"),
        }
        cards = QtWidgets.QHBoxLayout()
        for c in self.cards.values():
            cards.addWidget(c)

        self.grid = CoverageMonthsView()
        self.grid.months_model.colours = coverage_colours(self.palette())
        self.grid.expiryClicked.connect(self._open_expiry)
        self.grid.collectRequested.connect(self._collect_missing)
        self.started: list[int] = []  # jobs started by a cell's "Collect missing"
        self.empty_label = QtWidgets.QLabel(
            "No coverage yet: collected underlyings and expiries appear here."
        )
        legend = QtWidgets.QLabel(
            "Legend: "
            + " · ".join(COVERAGE_LABELS[k] for k in ("complete", "partial", "none", "failed"))
            + " — complete: every contract fetched; partial: some windows missing (n/total "
            "contracts); no data: nothing fetched yet; failed: some windows failed (retry them). "
            "Each line is one expiry (day of the month); click it to see its contracts."
        )
        legend.setWordWrap(True)

        self.usage = QtWidgets.QLabel()
        self.usage.setObjectName("apiUsage")
        self.usage.setWordWrap(True)
        usage_box = QtWidgets.QGroupBox("API usage")
        ul = QtWidgets.QVBoxLayout(usage_box)
        ul.addWidget(self.usage)

        cov_box = QtWidgets.QGroupBox("Coverage: each underlying's expiries, by month")
        cl = QtWidgets.QVBoxLayout(cov_box)
        cl.addWidget(legend)
        cl.addWidget(self.empty_label)
        cl.addWidget(self.grid, 1)

        self.at_risk = AtRiskPanel(controller)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(cards)
        lay.addWidget(self.at_risk)
        lay.addWidget(cov_box, 1)
        lay.addWidget(usage_box)

        self.usage_timer = QtCore.QTimer(self)
        self.usage_timer.setInterval(1000)
        self.usage_timer.timeout.connect(self.refresh_usage)
        self.usage_timer.start()
        self.refresh_usage()

    def changeEvent(self, event: QtCore.QEvent) -> None:
        if event.type() == QtCore.QEvent.Type.PaletteChange:
            self.grid.months_model.colours = coverage_colours(self.palette())
            self.grid.viewport().update()
        super().changeEvent(event)

    def schedule_refresh(self) -> None:
        self.controller.schedule(self.refresh(), name="dashboard-refresh")

    async def refresh(self) -> None:
        stats = await self.controller.usage.database_stats()
        self.cards["underlyings"].set_value(fmt_int(stats.get("underlyings", 0)))
        self.cards["contracts"].set_value(fmt_int(stats.get("contracts", 0)))
        self.cards["candles"].set_value(fmt_int(stats.get("candles", 0)))
        self.cards["db_size"].set_value(fmt_bytes(stats.get("db_bytes", 0)))
        labels, chips = await self.controller.analysis.coverage()
        # collected: something of it fetched (at the default interval); known: listed by the API
        collected = sum(1 for chip in chips if chip.state not in ("none", ""))
        self.cards["expiries"].set_value(
            f"{fmt_int(collected)} / {fmt_int(stats.get('expiries', 0))}"
        )
        self.grid.set_chips(labels, chips)
        self.empty_label.setVisible(not chips)
        self.grid.setVisible(bool(chips))
        await self.at_risk.refresh()
        self.refresh_usage()

    def _collect_missing(self, key: str, expiry: date) -> None:
        self.controller.schedule(self.collect_missing(key, expiry), name=f"cover-{key}-{expiry}")

    async def collect_missing(self, key: str, expiry: date) -> list[int]:
        """A coverage cell's "Collect missing": exactly what verify finds missing of it."""
        jobs = await self.controller.analysis.collect_missing_of(key, expiry)
        self.started += jobs
        what = f"{self.grid.months_model.label_of(key)} {expiry.isoformat()}"
        if jobs:
            log.info("Collect missing of %s: job %s", what, ", ".join(map(str, jobs)))
        else:
            log.info("Collect missing of %s: nothing missing", what)
        return jobs

    def _open_expiry(self, key: str, expiry: object) -> None:
        """A coverage line clicked: that expiry's contracts on the Data quality page."""
        window = self.window()
        quality = getattr(window, "quality_page", None)
        if quality is not None:
            window.tabs.setCurrentWidget(quality)  # type: ignore[attr-defined]
            self.controller.schedule(quality.show_expiry(key, expiry), name="quality-open")

    def refresh_usage(self) -> None:
        self.usage.setText(self.usage_text())

    def usage_text(self) -> str:
        usage = self.controller.usage
        lines = []
        windows = [  # one line: the coverage grid above gets the room
            f"{used:,} of {limit:,} requests in the last {fmt_span(sec)} "
            f"({100 * used / limit if limit else 0:.0f}%)"
            for sec, used, limit in usage.rate_usage()
        ]
        if windows:
            lines.append(" · ".join(windows))
        session = usage.session_requests()
        if session is not None:
            lines.append(
                f"This session: {session.requests:,} requests, {session.retries:,} retries "
                "(collections included)"
            )
        return "\n".join(lines) if lines else "No API usage yet."
