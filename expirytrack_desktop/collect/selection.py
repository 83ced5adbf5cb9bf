"""What the user asked to collect."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from expirytrack_desktop.collect.instruments import resolve_instrument
from expirytrack_desktop.collect.strikes import check_strikes
from expirytrack_desktop.upstox.models import INTERVALS

CONTRACT_TYPES = ("CE", "PE", "FUT")
MAX_MONTHS = 12


class SelectionError(ValueError):
    """A selection that cannot be run as given (one line, shown to the user)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Underlyings × expiries × interval × history window.

    ``underlyings``: instrument keys (or known symbols such as NIFTY, resolved on creation).
    ``expiries``: the dates to collect; ``None`` = every expiry the API offers now.
    ``months``: history before each expiry; a contract's target window is
    ``[expiry - months, expiry]`` (inclusive dates).
    ``strikes``: None = every strike; ``"N"`` / ``"X%"`` = only the options within ±N strikes
    or ±X % of the price near expiry (:mod:`.strikes`; the futures are fetched first).
    ``windows``: None = each contract's whole target window; else only these date ranges of
    these contracts, ``(expired key, first day, last day)`` -- "Collect missing" of a data
    quality finding, which must fetch exactly what the finding names (and asks no new history).
    """

    underlyings: tuple[str, ...]
    expiries: tuple[date, ...] | None = None
    interval: str = "1minute"
    months: int = 3
    contract_types: tuple[str, ...] = CONTRACT_TYPES
    strikes: str | None = None
    windows: tuple[tuple[str, date, date], ...] | None = None

    def __init__(
        self,
        underlyings: Iterable[str],
        expiries: Iterable[date] | None = None,
        interval: str = "1minute",
        months: int = 3,
        contract_types: Iterable[str] = CONTRACT_TYPES,
        strikes: str | None = None,
        windows: Iterable[tuple[str, date, date]] | None = None,
    ) -> None:
        keys: list[str] = []
        for u in underlyings:
            try:
                key = resolve_instrument(u)
            except ValueError as exc:
                raise SelectionError(str(exc)) from None
            if key not in keys:
                keys.append(key)
        if not keys:
            raise SelectionError("choose at least one instrument")
        if interval not in INTERVALS:
            raise SelectionError(
                f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}"
            )
        if not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
            raise SelectionError(f"months must be between 1 and {MAX_MONTHS}, not {months!r}")
        types = checked_contract_types(contract_types)
        try:
            strike_filter = check_strikes(strikes)
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
        exp = None if expiries is None else tuple(sorted(set(expiries)))
        if exp is not None and not exp:
            raise SelectionError("choose at least one expiry, or all expiries")
        object.__setattr__(self, "underlyings", tuple(keys))
        object.__setattr__(self, "expiries", exp)
        object.__setattr__(self, "interval", interval)
        object.__setattr__(self, "months", months)
        object.__setattr__(self, "contract_types", types)
        object.__setattr__(self, "strikes", strike_filter)
        object.__setattr__(self, "windows", None if windows is None else checked_windows(windows))

    def to_params(self) -> dict[str, Any]:
        """JSON-safe form stored in ``job.params_json`` (resume rebuilds the Selection from it)."""
        params: dict[str, Any] = {
            "underlyings": list(self.underlyings),
            "expiries": None if self.expiries is None else [d.isoformat() for d in self.expiries],
            "interval": self.interval,
            "months": self.months,
            "contract_types": list(self.contract_types),
        }
        if self.strikes is not None:  # absent otherwise: earlier jobs' parameters still match
            params["strikes"] = self.strikes
        if self.windows is not None:  # likewise
            params["windows"] = [[k, a.isoformat(), b.isoformat()] for k, a, b in self.windows]
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Selection:
        exp = params.get("expiries")
        win = params.get("windows")
        return cls(
            params["underlyings"],
            None if exp is None else [date.fromisoformat(d) for d in exp],
            params.get("interval", "1minute"),
            int(params.get("months", 3)),
            params.get("contract_types", CONTRACT_TYPES),
            params.get("strikes"),
            None
            if win is None
            else [(str(k), date.fromisoformat(a), date.fromisoformat(b)) for k, a, b in win],
        )


def checked_windows(
    windows: Iterable[tuple[str, date, date]],
) -> tuple[tuple[str, date, date], ...]:
    """Sorted and deduplicated; SelectionError for none, or a range ending before it starts."""
    out = tuple(sorted(set(windows)))
    if not out:
        raise SelectionError("choose at least one window to collect")
    for key, first, last in out:
        if last < first:
            raise SelectionError(f"{key}: window {first}..{last} ends before it starts")
    return out


def checked_contract_types(types: Iterable[str]) -> tuple[str, ...]:
    """Upper-cased, deduplicated, in order; SelectionError unless each is CE, PE or FUT."""
    out = tuple(dict.fromkeys(t.strip().upper() for t in types if t.strip()))
    if not out or any(t not in CONTRACT_TYPES for t in out):
        raise SelectionError(f"contract types must be among {', '.join(CONTRACT_TYPES)}")
    return out


def parse_contract_types(text: str) -> tuple[str, ...]:
    """``"CE,PE"`` (the command line's form) -> ``("CE", "PE")``."""
    return checked_contract_types(text.split(","))
