"""A candlestick chart with volume and open-interest panes (pyqtgraph), fluid at 22,000 candles.

pyqtgraph was chosen by measuring (bench/bench_chart.py, docs in bench/RESULTS.md "Chart"): it
runs on PySide6-Essentials (Qt Charts needs the 175 MB PySide6-Addons wheel) and draws numpy
arrays as one QPainterPath. This module imports it, so pages import this module lazily: the
window's cold start does not pay for it.

The x axis counts *session minutes*: each trading day shown is 375 slots (09:15-15:29 IST) side
by side, so nights and weekends take no room, while a minute without a candle stays an empty
slot — missing minutes are visible gaps, never flat bars. Candles, volume and OI are the
chart's own items (``ui.chart_items``): bodies as vertical segments with a pen as wide as a
slot, wicks as 1-px segments, the low-high envelope per pixel column where candles are denser.
Frames stay cheap during pan and zoom: no SI-prefix relabelling, y ranges refitted with slack
(most frames move no y axis), the crosshair hidden until the mouse is over the chart, the
premium pane linked only while shown (bench/bench_chart.py).
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
from expirytrack_desktop.ui.chart_items import BarsItem, CandleItem, LineItem
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

SLOTS_PER_DAY = 375
_OPEN = 9 * 3600 + 15 * 60


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
            plot.enableAutoRange(axis="y", enable=False)  # fitted by _fit_y, with slack
            plot.setMenuEnabled(False)
        for plot in (self.volume, self.oi):
            plot.setXLink(self.price)  # the premium pane follows only while it is shown
        for plot in (self.price, self.volume, self.premium):
            plot.hideAxis("bottom")  # one time axis, under the last pane: less text to draw
        for plot, _ in panes:
            plot.getAxis("left").setWidth(64)  # equal widths keep the panes' x aligned
            for side in ("left", "bottom", "right", "top"):  # hidden ones follow the view too
                # no SI prefix: else every range change re-sets the label's HTML and size
                plot.getAxis(side).enableAutoSIPrefix(False)
        self.premium.setVisible(False)
        self.layout_widget.ci.layout.setRowStretchFactor(0, 5)
        self.layout_widget.ci.layout.setRowStretchFactor(1, 2)
        self.layout_widget.ci.layout.setRowStretchFactor(2, 2)
        self.layout_widget.ci.layout.setRowStretchFactor(3, 3)
        self.candles = CandleItem()
        self.bars = BarsItem(QtGui.QColor(110, 130, 160))
        self.price.addItem(self.candles)
        self.volume.addItem(self.bars)
        self.oi_line = LineItem(QtGui.QColor(90, 120, 220))
        self.oi.addItem(self.oi_line)
        self.overlays: dict[str, pg.PlotDataItem] = {}
        self.legend = self.premium.addLegend(offset=(-10, 5))
        backdrop = QtGui.QColor(self.palette().color(QtGui.QPalette.ColorRole.Base))
        backdrop.setAlpha(215)  # the names stay readable over the lines they label
        self.legend.setBrush(pg.mkBrush(backdrop))
        self.vlines = [pg.InfiniteLine(angle=90, movable=False) for _ in range(4)]
        plots = (self.price, self.volume, self.oi, self.premium)
        for plot, line in zip(plots, self.vlines, strict=True):
            line.setVisible(False)  # until the mouse is over the chart
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
        self._overlay_xy: list[tuple[np.ndarray, np.ndarray]] = []
        self.price.scene().sigMouseMoved.connect(self._mouse_moved)
        self.price.getViewBox().sigXRangeChanged.connect(lambda *_: self._fit_y())

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
        self.oi_line.set_line(self._x + self._width / 2, arr[:, 5], self._width)
        for item in self.overlays.values():
            self.premium.removeItem(item)
        self.legend.clear()
        self.overlays.clear()
        self._overlay_xy = []
        colours = ((230, 140, 30), (150, 80, 200), (20, 150, 160), (200, 60, 120))
        for (name, (ts, values)), colour in zip((overlays or {}).items(), colours, strict=False):
            x = self.axis.slots(ts) + 0.5
            pen = pg.mkPen(colour, width=1.5)
            y = np.asarray(values, dtype=float)
            item = self.premium.plot(x, y, pen=pen, name=name, connect=_gaps(x - 0.5, 1.0))
            self.overlays[name] = item
            self._overlay_xy.append((x, y))
        shown = bool(self.overlays)
        self.premium.setXLink(self.price if shown else None)
        self.premium.setVisible(shown)
        self.premium.showAxis("bottom", shown)
        self.oi.showAxis("bottom", not shown)
        self.reset_view()
        self._fit_y(force=True)

    def reset_view(self) -> None:
        if len(self._x):
            self.price.setXRange(float(self._x[0]), float(self._x[-1] + self._width), padding=0.01)
        else:
            self.price.setXRange(0, SLOTS_PER_DAY)

    def _fit_y(self, force: bool = False) -> None:
        """Each pane's y range around what is in view. With slack: a range is set again only
        when the data leaves it or fills less than ``Y_REFIT_BELOW`` of it, so most pan and
        zoom frames move no y axis and redraw no tick labels."""
        (x0, x1), _ = self.price.getViewBox().viewRange()
        w = self._width
        c = self.candles
        spans = [
            (self.price, _visible_range(c.x, c.l, c.h, x0 - w, x1)),
            (self.volume, _visible_range(c.x, None, self.bars.h, x0 - w, x1)),
            (self.oi, _visible_range(self.oi_line.x, self.oi_line.h, self.oi_line.h, x0, x1)),
        ]
        if self._overlay_xy:
            ranges = [_visible_range(x, y, y, x0, x1) for x, y in self._overlay_xy]
            found = [r for r in ranges if r is not None]
            if found:
                spans.append((self.premium, (min(r[0] for r in found), max(r[1] for r in found))))
        for plot, span in spans:
            if span is not None:
                _set_y(plot, *span, force=force)

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
            line.setVisible(True)
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


Y_PAD = 0.08  # room above and below the data in view, as a fraction of its span
Y_REFIT_BELOW = 0.6  # fit again when the data in view fills less than this of the range


def _visible_range(
    x: np.ndarray, lo: np.ndarray | None, hi: np.ndarray, x0: float, x1: float
) -> tuple[float, float] | None:
    """Min and max of ``lo``/``hi`` (``lo`` None: 0 and ``hi``) where ``x0 <= x <= x1``,
    ignoring NaNs; None when nothing is there. ``x`` is ascending."""
    i0 = int(np.searchsorted(x, x0))
    i1 = int(np.searchsorted(x, x1, side="right"))
    if i1 <= i0:
        return None
    top = hi[i0:i1]
    bottom = top if lo is None else lo[i0:i1]
    low, high = float(bottom.min()), float(top.max())
    if not (np.isfinite(low) and np.isfinite(high)):  # a NaN in view: the finite values
        top, bottom = top[np.isfinite(top)], bottom[np.isfinite(bottom)]
        if not len(top) or not len(bottom):
            return None
        low, high = float(bottom.min()), float(top.max())
    return (min(low, 0.0) if lo is None else low), high


def _set_y(plot: pg.PlotItem, low: float, high: float, *, force: bool = False) -> None:
    """Set the pane's y range around ``[low, high]`` unless it already fits (see _fit_y)."""
    (y0, y1) = plot.getViewBox().viewRange()[1]
    span = high - low
    if not force and y0 <= low and high <= y1 and span >= (y1 - y0) * Y_REFIT_BELOW:
        return
    pad = span * Y_PAD if span > 0 else max(abs(high) * 0.01, 1.0)
    plot.setYRange(low - pad if low < 0 or low - pad >= 0 else 0.0, high + pad, padding=0)
