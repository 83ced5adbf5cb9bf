"""Render ``resources/expirytrack.svg`` into the icon files executables embed.

Windows executables take an ``.ico``, macOS bundles an ``.icns``; PyInstaller converts only
raster images (and only with Pillow). Qt can draw the SVG and write both formats through
its image plugins, so the spec runs this (in a subprocess: Qt stays out of PyInstaller's own
process) when ``resources/`` holds no ready-made .ico/.icns.

    python build_spec/make_icons.py OUT_DIR   ->  OUT_DIR/expirytrack.ico, .icns, .png
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 256  # the largest size Windows shows; one image per file (Qt writes one)


def render(svg: Path, out_dir: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtGui, QtSvg

    app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication([sys.argv[0]])
    renderer = QtSvg.QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {svg}")
    image = QtGui.QImage(SIZE, SIZE, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    renderer.render(painter)
    painter.end()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("ico", "icns", "png"):
        target = out_dir / f"expirytrack.{fmt}"
        writer = QtGui.QImageWriter(str(target), fmt.encode())
        if not writer.write(image):
            raise SystemExit(f"cannot write {target}: {writer.errorString()}")
        written.append(target)
    del app
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "icons"
    for path in render(ROOT / "resources" / "expirytrack.svg", out):
        print(path)
