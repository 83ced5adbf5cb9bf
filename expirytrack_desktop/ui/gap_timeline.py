"""The gaps timeline: a contract's trading sessions side by side, its missing minutes marked.

One horizontal strip; each trading day of the expiry is a segment of 375 session minutes
(09:15-15:29 IST; nights, weekends and holidays left out, as on the chart's axis). Minutes
with a candle are tinted; each pixel column is as red as the share of its minutes missing, so
a thin option's scattered gaps read as a density and a missing hour as solid red; days
outside the contract's stored span are grey. Hovering a run shows its span; clicking one
emits :attr:`GapTimeline.spanClicked` with its first minute (the page charts it there).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from expirytrack_desktop.analysis.quality import SESSION_MINUTES, GapRun
from expirytrack_desktop.timeutil import IST, IST_OFFSET_SECONDS
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

_OPEN = 9 * 3600 + 15 * 60
BAR_TOP, BAR_HEIGHT, MARGIN = 6, 26, 6
MISSING = QtGui.QColor(214, 69, 65)
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Span:
    """A run of missing minutes placed on the strip: slots ``[first, first + minutes)``."""

    run: GapRun
    first: int  # slot: day index × 375 + minute of the session

    @property
    def text(self) -> str:
        start = datetime.fromtimestamp(self.run.start_ts, IST)
        end = datetime.fromtimestamp(self.run.start_ts + 60 * (self.run.minutes - 1), IST)
        return (
            f"{start:%Y-%m-%d %a} {start:%H:%M}–{end:%H:%M} IST: {self.run.minutes} "
            f"minute{'s' if self.run.minutes != 1 else ''} without a candle"
        )


class GapTimeline(QtWidgets.QWidget):
    spanClicked = Signal(object)  # int: the first missing minute (epoch seconds)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gapTimeline")
        self.setMouseTracking(True)
        self.setMinimumHeight(BAR_TOP + BAR_HEIGHT + 22)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed
        )
        self.days: list[int] = []  # IST day numbers (epoch days) of the sessions drawn
        self.span_days: tuple[int, int] | None = None  # the contract's first and last day
        self.spans: list[Span] = []
        self._starts: list[int] = []
        self.setToolTip("")
        self.setAccessibleName("Missing minutes timeline")

    def set_gaps(self, days: list[int], runs: list[GapRun], span: tuple[int, int] | None) -> None:
        """``days``: the sessions to draw; ``runs``: the missing minutes (inside ``days``);
        ``span``: the contract's first and last stored day (None: nothing stored)."""
        self.days = sorted(days)
        self.span_days = span
        index = {d: i for i, d in enumerate(self.days)}
        spans = []
        for r in runs:
            local = r.start_ts + IST_OFFSET_SECONDS
            i = index.get(local // 86400)
            if i is not None:
                spans.append(Span(r, i * SESSION_MINUTES + (local % 86400 - _OPEN) // 60))
        self.spans = sorted(spans, key=lambda s: s.first)
        self._starts = [s.first for s in self.spans]
        self.setAccessibleDescription(
            f"{len(self.spans)} runs of missing minutes over {len(self.days)} sessions"
        )
        self.update()

    def clear(self) -> None:
        self.set_gaps([], [], None)

    # --- geometry ------------------------------------------------------------------------
    def _total(self) -> int:
        return max(len(self.days) * SESSION_MINUTES, 1)

    def _x(self, slot: float) -> float:
        width = self.width() - 2 * MARGIN
        return MARGIN + width * slot / self._total()

    def span_rect(self, span: Span) -> QtCore.QRectF:
        """Where ``span`` is drawn (at least 1 px wide, so one minute stays visible)."""
        x0, x1 = self._x(span.first), self._x(span.first + span.run.minutes)
        return QtCore.QRectF(x0, BAR_TOP, max(x1 - x0, 1.0), BAR_HEIGHT)

    def span_at(self, x: float) -> Span | None:
        """The run under ``x`` (the nearest within 2 px, so thin runs can be hovered)."""
        if not self.spans:
            return None
        width = self.width() - 2 * MARGIN
        slot = (x - MARGIN) * self._total() / max(width, 1)
        tolerance = 2 * self._total() / max(width, 1)
        i = bisect_right(self._starts, slot + tolerance) - 1
        best = None
        for s in self.spans[max(i - 2, 0) : i + 1]:
            if s.first - tolerance <= slot <= s.first + s.run.minutes + tolerance:
                best = s
        return best

    def missing_columns(self) -> list[tuple[int, float]]:
        """``(x, share)`` of each pixel column holding missing minutes: the share of its
        minutes missing (a thin option misses most minutes; dense runs read as solid red)."""
        width = max(self.width() - 2 * MARGIN, 1)
        per_px = self._total() / width  # minutes per pixel column
        shares: dict[int, float] = {}
        for s in self.spans:
            a, b = s.first, s.first + s.run.minutes
            col = int(a / per_px)
            while col * per_px < b:
                lo, hi = max(a, col * per_px), min(b, (col + 1) * per_px)
                shares[col] = shares.get(col, 0.0) + (hi - lo) / per_px
                col += 1
        return [(MARGIN + c, min(v, 1.0)) for c, v in sorted(shares.items())]

    # --- painting and the mouse ----------------------------------------------------------
    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:
        p = QtGui.QPainter(self)
        pal = self.palette()
        text = pal.color(QtGui.QPalette.ColorRole.Text)
        if not self.days:
            p.setPen(text)
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), "No candles stored.")
            p.end()
            return
        stored = QtGui.QColor(pal.color(QtGui.QPalette.ColorRole.Highlight))
        stored.setAlpha(90)
        outside = QtGui.QColor(pal.color(QtGui.QPalette.ColorRole.Mid))
        first, last = self.span_days or (self.days[-1] + 1, self.days[-1])
        for i, day in enumerate(self.days):
            x0, x1 = self._x(i * SESSION_MINUTES), self._x((i + 1) * SESSION_MINUTES)
            colour = stored if first <= day <= last else outside
            p.fillRect(QtCore.QRectF(x0, BAR_TOP, x1 - x0, BAR_HEIGHT), colour)
        for col_x, share in self.missing_columns():
            red = QtGui.QColor(MISSING)
            red.setAlphaF(0.25 + 0.75 * share)  # any missing minute shows; all missing: solid
            p.fillRect(QtCore.QRectF(col_x, BAR_TOP, 1.0, BAR_HEIGHT), red)
        # day boundaries, and a date under the first session of each week (or every day)
        p.setPen(QtGui.QPen(pal.color(QtGui.QPalette.ColorRole.Base), 1))
        for i in range(1, len(self.days)):
            x = self._x(i * SESSION_MINUTES)
            p.drawLine(QtCore.QPointF(x, BAR_TOP), QtCore.QPointF(x, BAR_TOP + BAR_HEIGHT))
        p.setPen(text)
        metrics = QtGui.QFontMetrics(self.font())
        room = self._x(SESSION_MINUTES) - self._x(0)
        every = max(1, int((metrics.horizontalAdvance("28 Sep") + 8) // max(room, 1)) + 1)
        for i in range(0, len(self.days), every):
            when = EPOCH + timedelta(days=self.days[i])
            x = self._x(i * SESSION_MINUTES)
            p.drawText(
                QtCore.QPointF(x, BAR_TOP + BAR_HEIGHT + metrics.ascent() + 2), f"{when:%d %b}"
            )
        p.end()

    def event(self, e: QtCore.QEvent) -> bool:
        if e.type() == QtCore.QEvent.Type.ToolTip:
            help_event: Any = e
            span = self.span_at(help_event.pos().x())
            if span is not None:
                QtWidgets.QToolTip.showText(help_event.globalPos(), span.text, self)
            else:
                QtWidgets.QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:
        over = self.span_at(event.position().x()) is not None
        self.setCursor(Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            span = self.span_at(event.position().x())
            if span is not None:
                self.spanClicked.emit(span.run.start_ts)
