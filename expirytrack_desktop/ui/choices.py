"""What the collection wizard chooses, as plain data (pages fill it; services read it).

In a module of its own so the services that act on a choice do not import the wizard page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from expirytrack_desktop.collect import Selection


@dataclass(slots=True)
class ExpiryChoice:
    """One expiry as the wizard shows it; ``state`` is the local coverage.

    ``stored`` is True when the expiry comes from the database, not (yet) from a fresh
    answer of the API (the budget is used up, or the answer is still on its way).
    """

    expiry: date
    weekly: bool | None
    state: str = "none"
    stored: bool = False


@dataclass(slots=True)
class WizardSelection:
    """What the wizard hands to the services: instrument key -> expiries, and options."""

    expiries: dict[str, list[date]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # key -> display symbol
    interval: str = "1minute"
    months: int = 3
    concurrency: int = 8
    # only these (expired key, first day, last day) ranges: "Collect missing" of a finding
    windows: tuple[tuple[str, date, date], ...] | None = None

    def params_for(self, key: str, expiries: list[date]) -> dict[str, Any]:
        """The engine's selection for one underlying, as the parameters a job stores."""
        sel = Selection([key], expiries, self.interval, self.months, windows=self.windows)
        return sel.to_params()
