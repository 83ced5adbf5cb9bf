"""What the window needs from the rest of the app, built once per process.

Holds the configuration the window was started with (paths, settings, demo or real,
database path) and, lazily, the engine's runtime. The window never reaches the engine
through globals: it gets this object, and tests build one pointing at temporary folders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.settings import Settings
from expirytrack_desktop.ui.qt import QtCore
from expirytrack_desktop.ui.runtime_adapter import make_runtime

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LaunchOptions:
    demo: bool = False
    db: str | None = None
    api_base: str | None = None
    rate_limit: str | None = None


@dataclass(slots=True)
class Services:
    paths: AppPaths
    settings: Settings
    options: LaunchOptions = field(default_factory=LaunchOptions)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def demo(self) -> bool:
        return self.options.demo

    def runtime(self) -> Any:
        """The shared wiring (same precedence as the CLI: flag > environment > settings)."""
        o = self.options
        rt = make_runtime(
            self.paths, demo=o.demo, db=o.db, api_base=o.api_base, rate_limit=o.rate_limit
        )
        rt.settings = self.settings  # the window's (possibly just edited) settings
        return rt

    @property
    def db_path(self) -> Path:
        """--db, else the demo database in demo mode, else environment, settings, default."""
        return Path(self.runtime().db_path)

    @property
    def export_dir(self) -> Path:
        return Path(self.settings.export_dir) if self.settings.export_dir else self.paths.export_dir

    def save_settings(self) -> None:
        self.settings.save(self.paths.settings_path)

    def qsettings(self) -> QtCore.QSettings:
        """Window state (geometry, last choices) in an INI file in the app's config folder.

        Always a file path under ``AppPaths`` so tests (which point ``EXPIRYTRACK_HOME`` at a
        temporary folder) never read or write the user's real settings.
        """
        name = "window-demo.ini" if self.demo else "window.ini"
        return QtCore.QSettings(
            str(self.paths.config_dir / name), QtCore.QSettings.Format.IniFormat
        )

    @classmethod
    def create(cls, paths: AppPaths, options: LaunchOptions) -> Services:
        paths.ensure()
        return cls(paths=paths, settings=Settings.load(paths.settings_path), options=options)
