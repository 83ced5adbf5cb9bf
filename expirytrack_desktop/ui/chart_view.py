"""A candlestick chart with volume and open-interest panes (pyqtgraph), fluid at 22,000 candles.

pyqtgraph was chosen by measuring (bench/bench_chart.py, docs in bench/RESULTS.md "Chart"): it
runs on PySide6-Essentials (Qt Charts needs the 175 MB PySide6-Addons wheel) and draws numpy
arrays as one QPainterPath. This module imports it, so pages import this module lazily: the
window's cold start does not pay for it.

The x axis counts *session minutes*: each trading day shown is 375 slots (09:15-15:29 IST) side
by side, so nights and weekends take no room, while a minute without a candle stays an empty
slot — missing minutes are visible gaps, never flat bars. Bodies are drawn as vertical segments
with a pen as wide as a slot, wicks as 1-px segments; where more than one candle falls on a
pixel, each pixel column draws the low-high envelope instead (what the eye can see anyway).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyqtgraph as pg  # type: ignore[import-untyped]  # pyqtgraph ships no type information

from expirytrack_desktop.analysis.candles import Candle
from expirytrack_desktop.timeutil import IST, IST_OFFSET_SECONDS
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

SLOTS_PER_DAY = 375
_OPEN = 9 * 3600 + 15 * 60
UP = QtGui.QColor(38, 166, 91)
DOWN = QtGui.QColor(214, 69, 65)


@dataclass(frozen=True, slots=True)
class SessionAxis:
    """Maps candle times to slots: trading day index × 375 + minute of the session."""

    days: tuple[int, ...]  # IST day numbers (epoch days), ascending

    @classmethod
    def for_times(cls, stamps: Sequence[int]) -> SessionAxis:
        return cls(tuple(sorted({(t + IST_OFFSET_SECONDS) // 86400 for t in stamps})))

    def slot(self, ts: int) -> float:
        local = ts + IST_OFFSET_SECONDS
        day = local // 86400
        i = bisect_right(self.days, day) - 1
        minute = (local % 86400 - _OPEN) // 60
        return float(i * SLOTS_PER_DAY + min(max(minute, 0), SLOTS_PER_DAY - 1))

    def slots(self, stamps: Sequence[int]) -> np.ndarray:
        return np.fromiter((self.slot(t) for t in stamps), dtype=float, count=len(stamps))

    def label(self, slot: float) -> str:
        if not self.days:
            return ""
        i = min(max(int(slot // SLOTS_PER_DAY), 0), len(self.days) - 1)
        minute = int(slot) - i * SLOTS_PER_DAY
        ts = self.days[i] * 86400 - IST_OFFSET_SECONDS + _OPEN + 60 * minute
        when = datetime.fromtimestamp(ts, IST)
        return when.strftime("%d %b %H:%M")


class _TimeAxis(pg.AxisItem):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__("bottom")
        self.axis_map = SessionAxis(())

    def tickStrings(self, values, scale, spacing):  # type: ignore[no-untyped-def]  # pyqtgraph's signature
        return [self.axis_map.label(v) for v in values]


class CandleItem(pg.GraphicsObject):  # type: ignore[misc]
    """Candlesticks (``width`` slots each) drawn from numpy arrays, visible range only."""

    def __init__(self, line: QtGui.QColor | None = None) -> None:
        super().__init__()
        self.line = line  # wick / envelope colour; None: the palette's text colour
        self.x = np.empty(0)
        self.o = self.h = self.l = self.c = np.empty(0)
        self.width = 1.0
        self._bounds = QtCore.QRectF()

    def set_data(
        self,
        x: np.ndarray,
        o: np.ndarray,
        h: np.ndarray,
        lo: np.ndarray,
        c: np.ndarray,
        width: float,
    ) -> None:
        self.prepareGeometryChange()
        self.x, self.o, self.h, self.l, self.c, self.width = x, o, h, lo, c, width
        if len(x):
            self._bounds = QtCore.QRectF(
                float(x[0]), float(lo.min()), float(x[-1] - x[0] + width), float(h.max() - lo.min())
            )
        else:
            self._bounds = QtCore.QRectF()
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        return self._bounds

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):  # type: ignore[no-untyped-def]  # pyqtgraph's hook
        """The y range of the candles inside ``orthoRange`` (x): the y axis fits what is shown."""
        if not len(self.x):
            return None, None
        if ax == 0:
            return float(self.x[0]), float(self.x[-1] + self.width)
        i0, i1 = 0, len(self.x)
        if orthoRange is not None:
            i0 = max(int(np.searchsorted(self.x, orthoRange[0] - self.width)), 0)
            i1 = int(np.searchsorted(self.x, orthoRange[1], side="right"))
        if i1 <= i0:
            return None, None
        return float(self.l[i0:i1].min()), float(self.h[i0:i1].max())

    def visible(self) -> tuple[slice, float, float, float] | None:
        """The candles in view (a slice), the view's x range and pixels per slot."""
        if not len(self.x):
            return None
        view = self.getViewBox()
        (x0, x1), _ = view.viewRange()
        i0 = max(int(np.searchsorted(self.x, x0 - self.width)), 0)
        i1 = min(int(np.searchsorted(self.x, x1 + self.width)) + 1, len(self.x))
        if i1 <= i0:
            return None
        return slice(i0, i1), x0, x1, view.width() / max(x1 - x0, 1e-9)

    def paint(self, p: QtGui.QPainter, *_args: object) -> None:
        seen = self.visible()
        if seen is None:
            return
        part, x0, x1, px_per_slot = seen
        view = self.getViewBox()
        x, o, h, lo, c = (a[part] for a in (self.x, self.o, self.h, self.l, self.c))
        centre = x + self.width / 2
        if px_per_slot * self.width < 2.0:  # several candles per pixel: the envelope
            columns = max(int(view.width()), 1)
            bins = ((centre - x0) / max(x1 - x0, 1e-9) * columns).astype(np.int64)
            edges = np.flatnonzero(np.diff(bins)) + 1
            starts = np.concatenate(([0], edges))
            highs = np.maximum.reduceat(h, starts)
            lows = np.minimum.reduceat(lo, starts)
            xs = centre[starts]
            pen = pg.mkPen(self.palette_text(), width=1)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.drawPath(_pairs(xs, lows, highs))
            return
        wick = pg.mkPen(self.palette_text(), width=1)
        wick.setCosmetic(True)
        p.setPen(wick)
        p.drawPath(_pairs(centre, lo, h))
        body_px = max(px_per_slot * self.width * 0.7, 1.0)
        for colour, mask in ((UP, c >= o), (DOWN, c < o)):
            if not mask.any():
                continue
            pen = QtGui.QPen(colour)
            pen.setWidthF(body_px)
            pen.setCosmetic(True)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            top = np.maximum(o[mask], c[mask])
            bottom = np.minimum(o[mask], c[mask])
            flat = top == bottom  # a doji still shows a line
            p.drawPath(_pairs(centre[mask], bottom, np.where(flat, top + 1e-9, top)))

    def palette_text(self) -> QtGui.QColor:
        if self.line is not None:
            return self.line
        return QtWidgets.QApplication.palette().color(QtGui.QPalette.ColorRole.WindowText)


class BarsItem(CandleItem):
    """Volume bars: one path of vertical segments from 0, as wide as a slot when there is room."""

    def set_bars(self, x: np.ndarray, v: np.ndarray, width: float) -> None:
        zero = np.zeros_like(v)
        self.set_data(x, zero, v, zero, v, width)

    def paint(self, p: QtGui.QPainter, *_args: object) -> None:
        seen = self.visible()
        if seen is None:
            return
        part, x0, x1, px_per_slot = seen
        view = self.getViewBox()
        x, v = self.x[part], self.h[part]
        centre = x + self.width / 2
        if px_per_slot * self.width < 2.0:  # several bars per pixel: the tallest per column
            columns = max(int(view.width()), 1)
            bins = ((centre - x0) / max(x1 - x0, 1e-9) * columns).astype(np.int64)
            starts = np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))
            centre, v = centre[starts], np.maximum.reduceat(v, starts)
        pen = QtGui.QPen(self.palette_text())
        pen.setWidthF(max(px_per_slot * self.width * 0.7, 1.0))
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        p.setPen(pen)
        p.drawPath(_pairs(centre, np.zeros_like(v), v))


def _pairs(x: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> QtGui.QPainterPath:
    """One path of vertical segments (x, y0)-(x, y1), built in C by pyqtgraph."""
    xs = np.repeat(x, 2)
    ys = np.empty(len(x) * 2)
    ys[0::2] = y0
    ys[1::2] = y1
    return pg.arrayToQPath(xs, ys, connect="pairs")


class ChartView(QtWidgets.QWidget):
    """Price (candles + overlays), volume and OI panes on one session-minute axis."""

    hovered = Signal(str)  # the crosshair's readout

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chartView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.layout_widget = pg.GraphicsLayoutWidget(parent=self)
        self.layout_widget.setBackground(self.palette().color(QtGui.QPalette.ColorRole.Base))
        self.axes = [_TimeAxis(), _TimeAxis(), _TimeAxis(), _TimeAxis()]
        self.price = self.layout_widget.addPlot(row=0, col=0, axisItems={"bottom": self.axes[0]})
        self.volume = self.layout_widget.addPlot(row=1, col=0, axisItems={"bottom": self.axes[1]})
        self.oi = self.layout_widget.addPlot(row=2, col=0, axisItems={"bottom": self.axes[2]})
        # option premiums (CE, PE, straddle) on their own scale, shown when there are overlays
        self.premium = self.layout_widget.addPlot(row=3, col=0, axisItems={"bottom": self.axes[3]})
        panes = (
            (self.price, "price"),
            (self.volume, "volume"),
            (self.oi, "OI"),
            (self.premium, "premium"),
        )
        for plot, name in panes:
            plot.setLabel("left", name)
            plot.setMouseEnabled(x=True, y=False)
            plot.getViewBox().setAutoVisible(y=True)
            plot.enableAutoRange(axis="y")
            plot.setMenuEnabled(False)
        for plot in (self.volume, self.oi, self.premium):
            plot.setXLink(self.price)
        for plot in (self.price, self.volume, self.premium):
            plot.hideAxis("bottom")  # one time axis, under the last pane: less text to draw
        for plot, _ in panes:
            left = plot.getAxis("left")
            left.setWidth(64)  # equal widths keep the panes' x aligned
            left.enableAutoSIPrefix(False)  # no label re-layout on every zoom
        self.premium.setVisible(False)
        self.layout_widget.ci.layout.setRowStretchFactor(0, 5)
        self.layout_widget.ci.layout.setRowStretchFactor(1, 2)
        self.layout_widget.ci.layout.setRowStretchFactor(2, 2)
        self.layout_widget.ci.layout.setRowStretchFactor(3, 3)
        self.candles = CandleItem()
        self.bars = BarsItem(QtGui.QColor(110, 130, 160))
        self.price.addItem(self.candles)
        self.volume.addItem(self.bars)
        self.oi_curve = self.oi.plot([], [], pen=pg.mkPen((90, 120, 220), width=1))
        for curve in (self.oi_curve,):
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.overlays: dict[str, pg.PlotDataItem] = {}
        self.legend = self.premium.addLegend(offset=(-10, 5))
        self.vlines = [pg.InfiniteLine(angle=90, movable=False) for _ in range(4)]
        plots = (self.price, self.volume, self.oi, self.premium)
        for plot, line in zip(plots, self.vlines, strict=True):
            plot.addItem(line, ignoreBounds=True)
        self.readout = QtWidgets.QLabel(" ")
        self.readout.setObjectName("chartReadout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.readout)
        lay.addWidget(self.layout_widget, 1)
        self.axis = SessionAxis(())
        self.series: list[Candle] = []
        self._x = np.empty(0)
        self._width = 1.0
        self.price.scene().sigMouseMoved.connect(self._mouse_moved)

    # --- data ----------------------------------------------------------------------------
    def set_series(
        self,
        candles: Sequence[Candle],
        minutes: int,
        overlays: dict[str, tuple[Sequence[int], Sequence[float]]] | None = None,
    ) -> None:
        """Show ``candles`` (bars of ``minutes``) and named overlay lines (times, values)."""
        stamps = [c.ts for c in candles]
        for ts, _ in (overlays or {}).values():
            stamps.extend(ts)
        self.axis = SessionAxis.for_times(stamps)
        for axis in self.axes:
            axis.axis_map = self.axis
        self.series = list(candles)
        self._width = float(min(minutes, SLOTS_PER_DAY))
        self._x = self.axis.slots([c.ts for c in candles])
        arr = np.array(
            [(c.open, c.high, c.low, c.close, c.volume, c.oi) for c in candles], dtype=float
        ).reshape(-1, 6)
        self.candles.set_data(self._x, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], self._width)
        self.bars.set_bars(self._x, arr[:, 4], self._width)
        self.oi_curve.setData(
            self._x + self._width / 2, arr[:, 5], connect=_gaps(self._x, self._width)
        )
        for item in self.overlays.values():
            self.premium.removeItem(item)
        self.legend.clear()
        self.overlays.clear()
        colours = ((230, 140, 30), (150, 80, 200), (20, 150, 160), (200, 60, 120))
        for (name, (ts, values)), colour in zip((overlays or {}).items(), colours, strict=False):
            x = self.axis.slots(ts) + 0.5
            pen = pg.mkPen(colour, width=1.5)
            y = np.asarray(values, dtype=float)
            item = self.premium.plot(x, y, pen=pen, name=name, connect=_gaps(x - 0.5, 1.0))
            self.overlays[name] = item
        shown = bool(self.overlays)
        self.premium.setVisible(shown)
        self.premium.showAxis("bottom", shown)
        self.oi.showAxis("bottom", not shown)
        self.reset_view()

    def reset_view(self) -> None:
        if len(self._x):
            self.price.setXRange(float(self._x[0]), float(self._x[-1] + self._width), padding=0.01)
        else:
            self.price.setXRange(0, SLOTS_PER_DAY)

    # --- keyboard and mouse --------------------------------------------------------------
    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        vb = self.price.getViewBox()
        (x0, x1), _ = vb.viewRange()
        span = x1 - x0
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            step = span * 0.1 * (-1 if key == Qt.Key.Key_Left else 1)
            vb.setXRange(x0 + step, x1 + step, padding=0)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal, Qt.Key.Key_Minus):
            factor = 0.8 if key != Qt.Key.Key_Minus else 1.25
            mid = (x0 + x1) / 2
            vb.setXRange(mid - span * factor / 2, mid + span * factor / 2, padding=0)
        elif key == Qt.Key.Key_Home:
            self.reset_view()
        else:
            super().keyPressEvent(event)

    def _mouse_moved(self, pos: QtCore.QPointF) -> None:
        if not len(self._x) or not self.price.sceneBoundingRect().contains(pos):
            return
        x = self.price.getViewBox().mapSceneToView(pos).x()
        for line in self.vlines:
            line.setPos(x)
        self.readout.setText(self.describe_at(x))
        self.hovered.emit(self.readout.text())

    def describe_at(self, x: float) -> str:
        """The crosshair's text at slot ``x``: the candle there, or 'no trade' in a gap."""
        i = int(np.searchsorted(self._x, x, side="right")) - 1
        when = self.axis.label(x)
        if i < 0 or x >= self._x[i] + self._width:
            return f"{when}  no trade"
        c = self.series[i]
        text = (
            f"{self.axis.label(float(self._x[i]))}  O {c.open:g}  H {c.high:g}  L {c.low:g}  "
            f"C {c.close:g}  V {c.volume:,}  OI {c.oi:,}"
        )
        for name, item in self.overlays.items():
            xs, ys = item.getData()
            j = int(np.searchsorted(xs, x, side="right")) - 1
            if 0 <= j < len(ys) and np.isfinite(ys[j]):
                text += f"  {name} {ys[j]:g}"
        return text


def _gaps(x: np.ndarray, width: float) -> np.ndarray:
    """pyqtgraph's per-point connect array: no line across a missing slot."""
    if len(x) < 2:
        return np.ones(len(x), dtype=bool)
    return np.append(np.diff(x) <= width + 1e-9, False)
