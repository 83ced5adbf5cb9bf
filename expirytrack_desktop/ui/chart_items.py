"""The chart's own graphics items: candles, volume bars and a line, drawn from numpy arrays.

Each item draws only what is in view, as one path per pen: where more than one candle (or
point) falls on a pixel column, the column's low-high envelope instead (what the eye can see
anyway). Paths are given in device pixels (:class:`Pixels`), not in data coordinates.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg  # type: ignore[import-untyped]  # pyqtgraph ships no type information

from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets

UP = QtGui.QColor(38, 166, 91)
DOWN = QtGui.QColor(214, 69, 65)


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
        with Pixels(p) as px:
            if px_per_slot * self.width < 2.0:  # several candles per pixel: the envelope
                starts = column_starts(centre, x0, x1, view.width())
                highs = np.maximum.reduceat(h, starts)
                lows = np.minimum.reduceat(lo, starts)
                p.setPen(pen(self.palette_text(), 1.0))
                p.drawPath(px.segments(centre[starts], lows, highs))
                return
            p.setPen(pen(self.palette_text(), 1.0))
            p.drawPath(px.segments(centre, lo, h))
            body_px = max(px_per_slot * self.width * 0.7, 1.0)
            for colour, mask in ((UP, c >= o), (DOWN, c < o)):
                if not mask.any():
                    continue
                p.setPen(pen(colour, body_px))
                top = np.maximum(o[mask], c[mask])
                bottom = np.minimum(o[mask], c[mask])
                p.drawPath(px.segments(centre[mask], bottom, top, at_least_1px=True))

    def palette_text(self) -> QtGui.QColor:
        if self.line is not None:
            return self.line
        return QtWidgets.QApplication.palette().color(QtGui.QPalette.ColorRole.WindowText)


def column_starts(centre: np.ndarray, x0: float, x1: float, width_px: float) -> np.ndarray:
    """Index of the first item in each pixel column the view ``x0..x1`` spans (``centre``
    ascending), for ``np.maximum.reduceat`` and the like: one mark per column."""
    columns = max(int(width_px), 1)
    bins = ((centre - x0) / max(x1 - x0, 1e-9) * columns).astype(np.int64)
    return np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))


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
            starts = column_starts(centre, x0, x1, view.width())
            centre, v = centre[starts], np.maximum.reduceat(v, starts)
        with Pixels(p) as px:
            p.setPen(pen(self.palette_text(), max(px_per_slot * self.width * 0.7, 1.0)))
            p.drawPath(px.segments(centre, np.zeros_like(v), v))


def pen(colour: QtGui.QColor, width_px: float) -> QtGui.QPen:
    pen = QtGui.QPen(colour)
    pen.setWidthF(width_px)
    pen.setCosmetic(True)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    return pen


class Pixels:
    """Draws an item's segments in device pixels, the painter's transform set aside.

    Why: Qt's raster engine strokes a pen wider than 1 px under a strongly non-uniform scale
    (the volume pane: ~0.02 px per unit up, ~3 px per slot across) some 100x slower than the
    same segments given in pixels (16 ms instead of 0.05 ms for 450 volume bars). A ViewBox
    child's transform is a scale and a translation, mapped here with numpy; any other
    transform is left to Qt."""

    def __init__(self, painter: QtGui.QPainter) -> None:
        self.painter = painter
        t = painter.transform()
        self.affine = not (t.m12() or t.m21() or t.m13() or t.m23())
        self.sx, self.dx, self.sy, self.dy = t.m11(), t.dx(), t.m22(), t.dy()

    def __enter__(self) -> Pixels:
        if self.affine:
            self.painter.save()
            self.painter.resetTransform()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.affine:
            self.painter.restore()

    def segments(
        self, x: np.ndarray, y0: np.ndarray, y1: np.ndarray, *, at_least_1px: bool = False
    ) -> QtGui.QPainterPath:
        """Vertical segments (x, y0)-(x, y1), data coordinates in; ``at_least_1px``: a
        segment of no height (a doji's body) still draws one pixel."""
        if not self.affine:
            return pairs(x, y0, np.where(y0 == y1, y1 + 1e-9, y1) if at_least_1px else y1)
        px_x = x * self.sx + self.dx
        px_y0 = y0 * self.sy + self.dy
        px_y1 = y1 * self.sy + self.dy
        if at_least_1px:
            up = -1.0 if self.sy < 0 else 1.0  # y1 >= y0 in data: its side on screen
            px_y1 = np.where(np.abs(px_y1 - px_y0) < 1.0, px_y0 + up, px_y1)
        return pairs(px_x, px_y0, px_y1)

    def line(self, x: np.ndarray, y: np.ndarray, connect: np.ndarray) -> QtGui.QPainterPath:
        """A polyline through the points, point i joined to i + 1 where ``connect[i]``."""
        if self.affine:
            x, y = x * self.sx + self.dx, y * self.sy + self.dy
        return pg.arrayToQPath(x, y, connect=connect)


def pairs(x: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> QtGui.QPainterPath:
    """One path of vertical segments (x, y0)-(x, y1), built in C by pyqtgraph."""
    xs = np.repeat(x, 2)
    ys = np.empty(len(x) * 2)
    ys[0::2] = y0
    ys[1::2] = y1
    return pg.arrayToQPath(xs, ys, connect="pairs")


class LineItem(CandleItem):
    """A line through ``(x, y)`` that breaks where consecutive points are more than ``width``
    apart (a missing minute is a gap, not a bridge); dense: one min-max stroke per pixel
    column, columns joined where the data is."""

    def set_line(self, x: np.ndarray, y: np.ndarray, width: float) -> None:
        self.set_data(x, y, y, y, y, width)

    def visible(self) -> tuple[slice, float, float, float] | None:
        seen = super().visible()
        if seen is None:
            return None
        part, x0, x1, px_per_slot = seen  # one point more on each side: the line enters
        return slice(max(part.start - 1, 0), part.stop), x0, x1, px_per_slot

    def paint(self, p: QtGui.QPainter, *_args: object) -> None:
        seen = self.visible()
        if seen is None:
            return
        part, x0, x1, px_per_slot = seen
        columns = max(int(self.getViewBox().width()), 1) if px_per_slot * self.width < 2.0 else 0
        x, y, connect = line_points(self.x[part], self.h[part], self.width, x0, x1, columns)
        with Pixels(p) as px:
            p.setPen(pen(self.palette_text(), 1.0))
            p.drawPath(px.line(x, y, connect))


def line_points(
    x: np.ndarray, y: np.ndarray, width: float, x0: float, x1: float, columns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points :class:`LineItem` draws and whether each joins the next: consecutive points
    join unless more than ``width`` apart (a missing minute). ``columns`` > 0 (the view
    ``x0``-``x1`` is that many pixels wide and denser than a point per 2 px): each pixel
    column's min and max instead, a column joined to the next where the data is."""
    joined = np.diff(x) <= width + 1e-9  # point i to i + 1
    if not columns:
        return x, y, np.append(joined, False)
    bins = ((x - x0) / max(x1 - x0, 1e-9) * columns).astype(np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))
    xs = np.repeat(x[starts], 2)
    ys = np.empty(len(xs))
    ys[0::2], ys[1::2] = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    connect = np.ones(len(xs), dtype=bool)
    # a column's max to the next column's min: joined when the column's last point and the
    # next one's first are (no missing minute between them)
    connect[1::2] = np.append(joined[starts[1:] - 1], False)
    return xs, ys, connect
