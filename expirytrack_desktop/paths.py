"""Where the app keeps its files; every path overridable so tests never touch the home folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from expirytrack_desktop import APP_NAME


class PlatformFolders(Protocol):
    """The three folders of ``platformdirs.PlatformDirs`` that the app uses."""

    @property
    def user_data_dir(self) -> str: ...
    @property
    def user_config_dir(self) -> str: ...
    @property
    def user_log_dir(self) -> str: ...


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
        """Ledger of requests sent, shared by every process of this user: Upstox's limits count
        per user (docs/upstox-api.md, "Rate limits")."""
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
    def default(cls, dirs: PlatformFolders | None = None) -> AppPaths:
        """Platform folders, or everything below ``EXPIRYTRACK_HOME`` when it is set.

        ``dirs`` answers ``user_data_dir``/``user_config_dir``/``user_log_dir`` (default:
        platformdirs for this OS). Linux: ``~/.local/share``, ``~/.config``,
        ``~/.local/state/.../log``; macOS: ``~/Library/Application Support`` (data and
        config) and ``~/Library/Logs``; Windows: ``%LOCALAPPDATA%\\ExpiryTrack`` (data and
        config) with ``Logs`` inside. Tests pass another OS's platformdirs class.
        """
        home = os.environ.get("EXPIRYTRACK_HOME")
        if home:
            base = Path(home)
            return cls(base / "data", base / "config", base / "logs")
        if dirs is None:
            import platformdirs

            dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        return cls(Path(dirs.user_data_dir), Path(dirs.user_config_dir), Path(dirs.user_log_dir))

    @classmethod
    def under(cls, base: Path) -> AppPaths:
        return cls(base / "data", base / "config", base / "logs")
