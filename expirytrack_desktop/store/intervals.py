"""Interval names <-> stored integer minutes (1440 = day): the tables keep minutes, users
and the API speak names."""

from __future__ import annotations

from expirytrack_desktop.upstox.models import INTERVAL_MINUTES

_MINUTES_INTERVAL = {v: k for k, v in INTERVAL_MINUTES.items()}


def interval_minutes(interval: str) -> int:
    """``"1minute" -> 1``, ``"day" -> 1440``; ValueError for anything else."""
    try:
        return INTERVAL_MINUTES[interval]
    except KeyError:
        raise ValueError(
            f"unknown interval {interval!r}; use one of {', '.join(INTERVAL_MINUTES)}"
        ) from None


def interval_name(minutes: int) -> str:
    return _MINUTES_INTERVAL[minutes]
