"""Export presets: named export configurations, saved and reused (wizard and ``--preset``).

One JSON file in the config folder, ``export_presets.json``::

    {"version": 1, "presets": {"nifty-weekly": {"options": {...}, "out": "~/data/"}}}

``options`` is :meth:`ExportOptions.to_json_dict` (what the export history stores too);
``out`` an optional output file or folder. Written atomically (fsutil), so a crash never
leaves half a file; a damaged file is reported, never silently replaced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.errors import InvalidOptionsError
from expirytrack_desktop.export.options import ExportOptions, options_from_json
from expirytrack_desktop.fsutil import atomic_write_json

FILE_NAME = "export_presets.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}")


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    options: ExportOptions
    out: str | None = None  # output file or folder; None: the export folder

    def to_json(self) -> dict[str, Any]:
        return {"options": self.options.to_json_dict(), "out": self.out}


def presets_path(config_dir: Path) -> Path:
    return config_dir / FILE_NAME


def load_presets(path: Path) -> dict[str, Preset]:
    """Every saved preset by name (none when the file does not exist yet)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidOptionsError(f"cannot read export presets {path}: {exc}") from None
    raw = doc.get("presets") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise InvalidOptionsError(f"{path} is not an export presets file")
    out = {}
    for name, entry in raw.items():
        if isinstance(entry, dict) and isinstance(entry.get("options"), dict):
            out[name] = Preset(name, options_from_json(entry["options"]), entry.get("out"))
    return out


def get_preset(path: Path, name: str) -> Preset:
    presets = load_presets(path)
    if name not in presets:
        known = ", ".join(sorted(presets)) or "none saved yet"
        raise InvalidOptionsError(f"no export preset named {name!r} (presets: {known})")
    return presets[name]


def save_preset(path: Path, preset: Preset) -> None:
    """Add or replace ``preset`` (its options are validated first)."""
    if not _NAME.fullmatch(preset.name):
        raise InvalidOptionsError(
            f"preset names are 1-64 letters, digits, spaces, '.', '_' or '-': {preset.name!r}"
        )
    preset.options.validate()
    presets = load_presets(path)
    presets[preset.name] = preset
    _write(path, presets)


def delete_preset(path: Path, name: str) -> bool:
    presets = load_presets(path)
    if presets.pop(name, None) is None:
        return False
    _write(path, presets)
    return True


def _write(path: Path, presets: dict[str, Preset]) -> None:
    doc = {"version": 1, "presets": {n: p.to_json() for n, p in sorted(presets.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
