"""``--network-wait`` / ``--login-wait``: how long a command's run waits, instead of stopping,
for the network to come back or for a new login (README "Long runs").

``collect`` waits 15 minutes for the network and 1 hour for a login by default; ``watch run``
(days-long backfills) waits for both for ever. While it waits the run prints one line per
change: "waiting for the network since 14:02, next try in 1 s", or "needs login: ... run
`expirytrack login` in another terminal ...", and continues by itself.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import datetime, timedelta
from typing import Any

from expirytrack_desktop.runtime import TOKEN_ENV, Runtime

COLLECT_NETWORK_WAIT = 15 * 60.0
COLLECT_LOGIN_WAIT = 60 * 60.0
FOREVER = None

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wait(text: str) -> float | None:
    """``"forever"`` -> None, ``"0"`` -> 0 (stop at once), ``"90"``/``"90s"``/``"15m"``/``"2h"``
    -> seconds. argparse type: a bad value is exit 2 with this message."""
    value = text.strip().lower()
    if value in ("forever", "for-ever", "inf", "always"):
        return None
    m = _DURATION.match(value)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds (90), minutes (15m), hours (2h) or 'forever'"
        )
    return float(m.group(1)) * _UNIT[m.group(2)]


def _shown(value: float | None) -> str:
    if value is None:
        return "forever"
    return f"{value / 60:g}m" if value >= 60 else f"{value:g}s"


def add_wait_options(
    parser: argparse.ArgumentParser, *, network: float | None, login: float | None
) -> None:
    parser.add_argument(
        "--network-wait",
        type=parse_wait,
        default=network,
        metavar="TIME",
        help="when the API stops answering mid-run, wait this long for it (probing every "
        f"1..60 s) before stopping with exit 6: seconds, 15m, 2h or forever "
        f"(default {_shown(network)}; 0 = stop at once)",
    )
    parser.add_argument(
        "--login-wait",
        type=parse_wait,
        default=login,
        metavar="TIME",
        help="when the token expires mid-run (03:30 IST daily), wait this long for a new "
        "login (`expirytrack login` in another terminal, or the window) before stopping with "
        f"exit 3 (default {_shown(login)}; 0 = stop at once)",
    )


def waiting_options(rt: Runtime, args: Any, passphrase: Any) -> dict[str, Any]:
    """The collector's long-run keywords for this command (``Runtime.make_collector``).

    The token is watched in the secret store the login writes (one store object, so an
    encrypted file's passphrase is asked once). A token given in the environment or the demo
    token cannot be replaced by a login: such a run stops at an expired token (exit 3).
    """
    options: dict[str, Any] = {
        "network_wait": getattr(args, "network_wait", COLLECT_NETWORK_WAIT),
    }
    login_wait = getattr(args, "login_wait", COLLECT_LOGIN_WAIT)
    if rt.demo or os.environ.get(TOKEN_ENV, "").strip() or login_wait == 0:
        return options
    from expirytrack_desktop.auth.token import load_access_token

    store = getattr(args, "secret_store", None) or rt.secret_store(passphrase)
    options.update(
        token_source=lambda: load_access_token(store),
        login_wait=login_wait,
        how_to_login="run `expirytrack login` in another terminal (or log in from the window)",
    )
    return options


def token_expiry_note(args: Any, seconds: float, now: datetime | None = None) -> str | None:
    """When the run is likely to outlast the stored token (it expires at 03:30 IST): one line
    saying when the run will pause for a login, or None."""
    store = getattr(args, "secret_store", None)
    if store is None or getattr(args, "estimate_only", False):
        return None
    from expirytrack_desktop.auth.token import TokenManager
    from expirytrack_desktop.timeutil import IST

    try:
        info = TokenManager(store).info()
    except Exception:  # unreadable now: the run itself says so if it matters
        return None
    now = now or datetime.now(IST)
    if info is None or not info.is_valid(now) or now + timedelta(seconds=seconds) < info.expires_at:
        return None
    until = info.expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
    login_wait = getattr(args, "login_wait", COLLECT_LOGIN_WAIT)
    how = (
        "it stops then (exit 3)"
        if login_wait == 0
        else "it pauses then until you log in (`expirytrack login` in another terminal)"
        + ("" if login_wait is None else f", for at most {_shown(login_wait)}")
    )
    return f"the access token expires at {until}, before this run ends: {how}"


__all__ = ["add_wait_options", "parse_wait", "token_expiry_note", "waiting_options"]
