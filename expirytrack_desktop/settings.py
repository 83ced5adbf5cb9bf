"""User settings with declared defaults, in one JSON file shared by the window and the CLI.

Precedence for the values a command line can name: flag > environment > settings file > default.
Secrets never live here (see ``auth.secrets``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from expirytrack_desktop.fsutil import atomic_write_json

DEFAULT_API_BASE = "https://api.upstox.com"
DEFAULT_RATE_LIMIT = "50/1,500/60,2000/1800"
# Upstox's public instrument master (no token): the F&O underlyings come from it.
INSTRUMENT_MASTER_PATH = "/market-quote/instruments/exchange/complete.json.gz"
DEFAULT_INSTRUMENTS_URL = "https://assets.upstox.com" + INSTRUMENT_MASTER_PATH

log = logging.getLogger(__name__)
_IGNORED = "settings file %s %s: using the default settings; fix or delete the file"


# Values outside these bounds give the default instead: a request cannot work with them
# (UpstoxClient refuses them), a clean-up limit cannot be negative.
_BOUNDS: dict[str, tuple[float, float]] = {
    "request_deadline_s": (1.0, 3600.0),
    "max_response_mb": (1, 4096),
    "export_keep_days": (0.0, 36500.0),
    "export_keep_mb": (0.0, 1e9),
}


def _kind(value: object) -> str:
    """'a list', 'a number', ... for messages."""
    names = {bool: "true/false", int: "a whole number", float: "a number", str: "text"}
    names.update({list: "a list", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


@dataclass(slots=True)
class Settings:
    api_base: str = DEFAULT_API_BASE
    instruments_url: str = DEFAULT_INSTRUMENTS_URL  # an http(s) URL or a local file path
    rate_limit: str = DEFAULT_RATE_LIMIT
    db_path: str = ""  # empty = the platform data folder
    export_dir: str = ""  # empty = <data folder>/exports
    # automatic clean-up after each export (only exports the app wrote, unchanged): remove
    # those older than this many days, then the oldest until the rest fit in this many MB
    export_keep_days: float = 0.0  # 0 = keep them all
    export_keep_mb: float = 0.0  # 0 = no size limit
    # exports to s3://: an S3-compatible service's endpoint ("" = AWS) and region ("" = the
    # AWS environment's, else us-east-1); the access key is in the secret store (export/s3.py)
    s3_endpoint: str = ""
    s3_region: str = ""
    default_interval: str = "1minute"
    history_months: int = 3
    at_risk_days: int = 14  # warn about incomplete expiries that vanish from Upstox this soon
    concurrency: int = 8
    # option chain IV/greeks: annual risk-free rate, continuously compounded (~ the 91-day
    # Treasury bill yield in 2025); `expirytrack chain --rate` overrides it
    risk_free_rate: float = 0.065
    redirect_uri: str = "http://127.0.0.1:8765/callback"
    # every API request: whole-answer deadline and body cap (see upstox/client.py for why)
    request_deadline_s: float = 120.0
    max_response_mb: int = 64
    # e-mail notifications of scheduled runs (the SMTP password is in the secret store)
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"  # "starttls" | "ssl" | "none"
    smtp_user: str = ""
    smtp_from: str = ""
    notify_to: str = ""  # comma-separated; for schedules without --notify-email, and `notify test`

    @classmethod
    def load(cls, path: Path) -> Settings:
        """Read the file; unknown keys are ignored.

        A file that is not settings (unreadable, not JSON, JSON but not an object) gives the
        defaults, and a value of the wrong type its own default, each with a warning naming
        the file: every command and the window keep working, and the user is told what was
        ignored. The file itself is left as it is (see :meth:`save`)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning(_IGNORED, path, f"cannot be read as JSON ({reason})")
            return cls()
        if not isinstance(data, dict):
            log.warning(_IGNORED, path, f"is not a JSON object (it holds {_kind(data)})")
            return cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value: Any = data[f.name]
            default: Any = f.default
            if default is None or default is MISSING:  # no scalar default to check against
                values[f.name] = value
                continue
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            if type(value) is not type(default):
                log.warning(
                    "settings file %s: %s should be %s, not %s; using the default %r",
                    path,
                    f.name,
                    _kind(default),
                    _kind(value),
                    default,
                )
                continue
            bounds = _BOUNDS.get(f.name)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                log.warning(
                    "settings file %s: %s must be from %g to %g, not %r; using the default %r",
                    path,
                    f.name,
                    *bounds,
                    value,
                    default,
                )
                continue
            values[f.name] = value
        return cls(**values)

    def save(self, path: Path) -> None:
        """Write atomically; a file there that is not settings is first kept beside it as
        ``<name>.damaged`` (so saving from the window never silently drops it)."""
        if path.exists():
            try:
                ok = isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
            except (OSError, ValueError):
                ok = False
            if not ok:
                with contextlib.suppress(OSError):
                    shutil.copyfile(path, path.with_name(path.name + ".damaged"))
        atomic_write_json(path, asdict(self))

    def resolved_api_base(self, flag: str | None = None) -> str:
        return (flag or os.environ.get("EXPIRYTRACK_API_BASE") or self.api_base).rstrip("/")

    def resolved_instruments_url(self, flag: str | None = None) -> str:
        return flag or os.environ.get("EXPIRYTRACK_INSTRUMENTS_URL") or self.instruments_url

    def resolved_rate_limit(self, flag: str | None = None) -> str:
        return flag or os.environ.get("EXPIRYTRACK_RATE_LIMIT") or self.rate_limit
