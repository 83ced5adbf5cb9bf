"""Force a light or dark colour scheme (``EXPIRYTRACK_COLOR_SCHEME=dark``) when the system's
cannot be detected (some Linux desktops, Xvfb). Normally the system palette is used as is."""

from __future__ import annotations

from expirytrack_desktop.ui.qt import Qt, QtGui, QtWidgets


def apply_color_scheme(app: QtWidgets.QApplication, scheme: str) -> None:
    app.styleHints().setColorScheme(
        Qt.ColorScheme.Dark if scheme == "dark" else Qt.ColorScheme.Light
    )
    if scheme != "dark":
        return
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    role = QtGui.QPalette.ColorRole
    colours = {
        role.Window: (45, 45, 48),
        role.WindowText: (230, 230, 230),
        role.Base: (30, 30, 32),
        role.AlternateBase: (40, 40, 44),
        role.ToolTipBase: (60, 60, 64),
        role.ToolTipText: (230, 230, 230),
        role.Text: (230, 230, 230),
        role.Button: (55, 55, 60),
        role.ButtonText: (230, 230, 230),
        role.BrightText: (255, 90, 90),
        role.Link: (100, 160, 255),
        role.Highlight: (42, 110, 190),
        role.HighlightedText: (255, 255, 255),
        role.PlaceholderText: (140, 140, 140),
    }
    for r, rgb in colours.items():
        pal.setColor(r, QtGui.QColor(*rgb))
    disabled = QtGui.QPalette.ColorGroup.Disabled
    for r in (role.Text, role.ButtonText, role.WindowText):
        pal.setColor(disabled, r, QtGui.QColor(120, 120, 120))
    app.setPalette(pal)
