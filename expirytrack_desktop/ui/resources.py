"""Find ``resources/`` files in a source checkout, an installed package or a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path

ICON_SVG = "expirytrack.svg"
ICON_PNG = "expirytrack.png"


def resource_dirs() -> list[Path]:
    """Candidate folders, most specific first (a frozen bundle unpacks to ``sys._MEIPASS``)."""
    dirs: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        dirs.append(Path(meipass) / "resources")
    package_root = Path(__file__).resolve().parent.parent  # expirytrack_desktop/
    dirs.append(package_root / "resources")
    dirs.append(package_root.parent / "resources")  # source checkout: <repo>/resources
    return dirs


def resource_path(name: str) -> Path | None:
    """The first existing ``resources/<name>``, or None."""
    for d in resource_dirs():
        p = d / name
        if p.exists():
            return p
    return None
