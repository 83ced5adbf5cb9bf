"""The chart's own items: device-pixel paths equal to Qt's mapping, and the OI line's gaps."""

from __future__ import annotations

import numpy as np
import pytest

from expirytrack_desktop.ui.chart_items import Pixels, line_points
from expirytrack_desktop.ui.qt import QtCore, QtGui


def _points(path: QtGui.QPainterPath) -> list[float]:
    """x0, y0, x1, y1, ... of the path's elements."""
    out: list[float] = []
    for i in range(path.elementCount()):
        out += [path.elementAt(i).x, path.elementAt(i).y]
    return out


def test_pixels_puts_segments_where_the_painters_transform_would(qapp):
    image = QtGui.QImage(200, 200, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    painter = QtGui.QPainter(image)
    try:
        painter.translate(12.5, 180.0)
        painter.scale(2.5, -0.02)  # a volume pane: tall values, a few pixels per slot
        t = painter.transform()
        x = np.array([1.0, 2.0, 5.0])
        y0 = np.zeros(3)
        y1 = np.array([4000.0, 0.0, 250.0])
        with Pixels(painter) as px:
            assert painter.transform().isIdentity()
            got = _points(px.segments(x, y0, y1))
            doji = _points(px.segments(x, y0, y1, at_least_1px=True))
        assert painter.transform() == t  # restored
    finally:
        painter.end()
    want = []
    for xi, a, b in zip(x, y0, y1, strict=True):
        for yi in (a, b):
            p = t.map(QtCore.QPointF(xi, yi))
            want += [p.x(), p.y()]
    assert got == pytest.approx(want)
    # a body of no height still draws one pixel, upwards on screen
    assert doji[7] == pytest.approx(doji[5] - 1.0)  # the second segment's end, 1 px up
    assert doji[:4] == pytest.approx(got[:4])


def test_the_line_breaks_at_a_missing_minute_when_sparse():
    x = np.array([0.0, 1.0, 2.0, 4.0, 5.0])  # slot 3 has no candle
    y = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    xs, ys, connect = line_points(x, y, 1.0, 0.0, 6.0, 0)
    assert list(xs) == list(x) and list(ys) == list(y)
    assert list(connect) == [True, True, False, True, False]


def test_the_dense_line_keeps_each_columns_range_and_its_gaps():
    # 8 slots on 2 pixel columns (4 slots each); a gap inside the second column, and a
    # gap of a whole column between the second and the third
    x = np.array([0.0, 1, 2, 3, 4, 6, 7, 12, 13])
    y = np.array([5.0, 9, 1, 4, 3, 8, 2, 7, 6])
    xs, ys, connect = line_points(x, y, 1.0, 0.0, 16.0, 4)
    assert list(xs) == [0, 0, 4, 4, 12, 12]
    assert list(ys) == [1, 9, 2, 8, 6, 7]  # each column's min and max
    # within a column joined; column 1 -> 2 joined (slot 3 -> 4), column 2 -> 4 not (7 -> 12)
    assert list(connect) == [True, True, True, False, True, False]


def test_column_starts_mark_the_first_item_of_each_pixel_column():
    from expirytrack_desktop.ui.chart_items import column_starts

    centre = np.array([0.1, 0.2, 0.6, 0.7, 1.5, 1.9])
    assert column_starts(centre, 0.0, 2.0, 2.0).tolist() == [0, 4]  # 2 px: 0..1, 1..2
    assert column_starts(centre, 0.0, 2.0, 4.0).tolist() == [0, 2, 4]  # 0.5 wide each
    assert column_starts(centre, 0.0, 2.0, 0.0).tolist() == [0]  # no width: one column
