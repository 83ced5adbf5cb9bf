"""Where the app keeps its files; every path overridable so tests never touch the home folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from expirytrack_desktop import APP_NAME


@dataclass(frozen=True, slots=True)
class AppPaths:
    data_dir: Path
    config_dir: Path
    log_dir: Path

    @property
    def db_path(self) -> Path:
        return Path(os.environ.get("EXPIRYTRACK_DB") or self.data_dir / "expirytrack.sqlite3")

    @property
    def demo_db_path(self) -> Path:
        return self.data_dir / "demo.sqlite3"

    @property
    def ratelimit_path(self) -> Path:
        """Ledger of requests sent, shared by every process of this user (DESIGN: Rate limits)."""
        return self.data_dir / "ratelimit.sqlite3"

    @property
    def export_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def settings_path(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def secrets_fallback_path(self) -> Path:
        """Fernet-encrypted secrets, used only when no real keyring backend works."""
        return self.config_dir / "secrets.enc"

    def ensure(self) -> AppPaths:
        for d in (self.data_dir, self.config_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    @classmethod
    def default(cls) -> AppPaths:
        """Platform folders, or everything below ``EXPIRYTRACK_HOME`` when it is set."""
        home = os.environ.get("EXPIRYTRACK_HOME")
        if home:
            base = Path(home)
            return cls(base / "data", base / "config", base / "logs")
        import platformdirs

        return cls(
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )

    @classmethod
    def under(cls, base: Path) -> AppPaths:
        return cls(base / "data", base / "config", base / "logs")
