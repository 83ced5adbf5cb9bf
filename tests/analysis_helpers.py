"""A database collected from the simulator through the real CLI, for the analysis tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest

from expirytrack_desktop import runtime
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN
from tests.collect_helpers import NIFTY, make_app

MONTHLY = date(2025, 9, 30)  # has a future
WEEKLY = date(2025, 9, 23)  # no future: the forward comes from put-call parity
RATE = 0.065
__all__ = ["MONTHLY", "NIFTY", "RATE", "WEEKLY", "collect_chain_db"]


async def _no_sleep(_s: float) -> None:
    return None


def collect_chain_db(folder: Path, expiries: Iterable[date], strikes: int = 4) -> Path:
    """NIFTY ``expiries`` (one month of 1-minute candles) collected into ``folder``."""
    db_path = folder / "chain.sqlite3"
    app = make_app(strikes=strikes)
    assert not app.market.is_weekly(NIFTY, MONTHLY) and app.market.is_weekly(NIFTY, WEEKLY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(folder))
        mp.setenv("EXPIRYTRACK_HOME", str(folder / "home"))
        mp.setenv("EXPIRYTRACK_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
        mp.setenv("EXPIRYTRACK_RATE_LIMIT", "100000/1")
        mp.setenv("EXPIRYTRACK_DB", str(db_path))
        with runtime.override(
            transport=app.transport(), client_kwargs={"sleep": _no_sleep}, ledger_path=False
        ):
            for expiry in expiries:
                args = ["collect", "-i", "NIFTY", "-e", expiry.isoformat(), "--months", "1"]
                assert main(args) == exitcodes.OK
    return db_path
