"""Chart redraw during pan and zoom with a contract's whole life (~22,000 1-minute candles).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_chart.py [--lib pyqtgraph|qtcharts]
        [--candles 22000] [--steps 200] [--size WxH] [--runs N]

Builds ~22,000 candles (59 sessions of 375 minutes with ~0.5 % missing, prices in 0.05
ticks), shows them in a 1280x800 window, then pans (120 steps of 1/40 of the view, right, left
and right again, the view always on the candles: 40 % of them), zooms in and out (80 steps,
down to ~130 candles and back), each step followed by one paint of the chart's viewport (the
event loop's, else a synchronous repaint), and reports p50/p95/p99/max milliseconds per redraw.
Target: p99 <= 16 ms.

``--lib qtcharts`` draws the same with Qt Charts (QCandlestickSeries + QBarSeries +
QLineSeries): it needs the PySide6-Addons wheel (175 MB), which the app does not ship; run it
in a scratch environment that has it. This is how the plotting library was chosen.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


def make_candles(n: int) -> list:
    import numpy as np

    from expirytrack_desktop.analysis.candles import Candle
    from expirytrack_desktop.timeutil import IST_OFFSET_SECONDS

    rng = np.random.default_rng(7)
    out = []
    price = 24_000.0
    day0 = 20_200  # an epoch day
    day = 0
    while len(out) < n:
        if (day0 + day + 3) % 7 < 5:  # weekdays only
            base = (day0 + day) * 86400 - IST_OFFSET_SECONDS + 9 * 3600 + 15 * 60
            for m in range(375):
                if rng.random() < 0.005 or len(out) >= n:
                    continue
                o = price
                c = max(round((o + rng.normal(0, 8)) * 20) / 20, 0.05)
                h = max(o, c) + round(abs(rng.normal(0, 4)) * 20) / 20
                lo = min(o, c) - round(abs(rng.normal(0, 4)) * 20) / 20
                out.append(Candle(base + 60 * m, o, h, lo, c, int(rng.integers(0, 5000)),
                                  int(1e6 + rng.integers(0, 1e5))))  # fmt: skip
                price = c
        day += 1
    return out


def bench_pyqtgraph(candles: list, steps: int, size: tuple[int, int]) -> list[float]:
    from expirytrack_desktop.ui.chart_view import ChartView
    from expirytrack_desktop.ui.qt import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    view = ChartView()
    view.resize(*size)
    view.show()
    view.set_series(candles, 1)
    app.processEvents()
    vb = view.price.getViewBox()

    viewport = view.layout_widget.viewport()

    class PaintCounter(QtCore.QObject):
        """Counts the viewport's paint events (a Python override of an item's paint is not a
        reliable counter: the binding may keep calling the method it first found)."""

        painted = 0

        def eventFilter(self, obj, event):  # type: ignore[no-untyped-def]  # Qt's signature
            if event.type() == QtCore.QEvent.Type.Paint:
                self.painted += 1
            return False

    counter = PaintCounter()
    viewport.installEventFilter(counter)

    def redraw() -> None:
        # the new range (and the y auto-range) is applied and painted by the event loop;
        # repaint only if it did not paint (then this measures one paint, not two)
        before = counter.painted
        app.processEvents()
        if counter.painted == before:
            viewport.repaint()

    try:
        return _steps(vb.viewRange()[0], lambda a, b: vb.setXRange(a, b, padding=0), redraw, steps)
    finally:
        view.close()
        view.deleteLater()
        app.processEvents()


def bench_qtcharts(candles: list, steps: int, size: tuple[int, int]) -> list[float]:
    from PySide6 import QtCharts, QtWidgets
    from PySide6.QtCore import Qt

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    chart = QtCharts.QChart()
    series = QtCharts.QCandlestickSeries()
    sets = []
    for i, c in enumerate(candles):
        sets.append(QtCharts.QCandlestickSet(c.open, c.high, c.low, c.close, float(i)))
    series.append(sets)
    chart.addSeries(series)
    oi = QtCharts.QLineSeries()
    for i, c in enumerate(candles):
        oi.append(float(i), float(c.close))
    chart.addSeries(oi)
    axis_x = QtCharts.QValueAxis()
    axis_y = QtCharts.QValueAxis()
    chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
    chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
    for s in (series, oi):
        s.attachAxis(axis_x)
        s.attachAxis(axis_y)
    axis_y.setRange(min(c.low for c in candles), max(c.high for c in candles))
    view = QtCharts.QChartView(chart)
    view.resize(*size)
    view.show()
    axis_x.setRange(0, len(candles))
    app.processEvents()

    def redraw() -> None:
        app.processEvents()

    return _steps((0.0, float(len(candles))), axis_x.setRange, redraw, steps)


def _steps(start: tuple[float, float], set_range, redraw, steps: int) -> list[float]:  # type: ignore[no-untyped-def]
    x0, x1 = start
    span = x1 - x0
    times = []
    moves = []
    zoomed = (x0 + span * 0.3, x0 + span * 0.7)
    a, b = zoomed
    pans = steps * 3 // 5
    for i in range(pans):  # pan right, left, right: the view stays on the candles (30-70 %)
        step = (b - a) / 40 * (1 if i < pans // 4 or i >= pans * 3 // 4 else -1)
        a, b = a + step, b + step
        moves.append((a, b))
    for i in range(steps - len(moves)):  # zoom in, then out
        mid = (a + b) / 2
        factor = 0.9 if i < (steps - len(moves)) // 2 else 1 / 0.9
        half = (b - a) * factor / 2
        a, b = mid - half, mid + half
        moves.append((a, b))
    set_range(*zoomed)
    redraw()
    for a, b in moves:
        t0 = time.perf_counter()
        set_range(a, b)
        redraw()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", choices=("pyqtgraph", "qtcharts"), default="pyqtgraph")
    ap.add_argument("--candles", type=int, default=22_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole run (a fresh chart)")
    ap.add_argument(
        "--size",
        default="1280x800",
        help="the chart widget's size (the Chart page of a 1280x800 main window: ~1220x440)",
    )
    args = ap.parse_args()
    candles = make_candles(args.candles)
    width, height = (int(v) for v in args.size.split("x"))
    run = bench_pyqtgraph if args.lib == "pyqtgraph" else bench_qtcharts
    for _ in range(args.runs):
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        times = sorted(run(candles, args.steps, (width, height)))
        total = time.perf_counter() - t0

        p99 = _pct(times, 0.99)
        print(
            f"{args.lib} at {args.size}: {len(candles):,} candles, {len(times)} pan/zoom redraws: "
            f"p50 {statistics.median(times):.1f} ms, p95 {_pct(times, 0.95):.1f} ms, "
            f"p99 {p99:.1f} ms, "
            f"max {times[-1]:.1f} ms -> {'PASS' if p99 <= 16 else 'FAIL'} (p99 <= 16 ms); "
            f"run {total:.1f} s, load average {load:.1f}"
        )


if __name__ == "__main__":
    main()
