"""Fault injection settings and the per-request draw, deterministic from a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Probability per request of each fault, plus a latency range in milliseconds."""

    http_500: float = 0.0
    http_503: float = 0.0
    truncated_json: float = 0.0
    drop_connection: float = 0.0
    latency_ms: tuple[int, int] = (0, 0)
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("http_500", "http_503", "truncated_json", "drop_connection"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability, got {p!r}")
        lo, hi = self.latency_ms
        if lo < 0 or hi < lo:
            raise ValueError(f"bad latency range {self.latency_ms!r}")


@dataclass(frozen=True, slots=True)
class FaultDraw:
    """What happens to one request: ``kind`` is None, "drop", "500", "503" or "truncate"."""

    kind: str | None
    latency_s: float
    cut_fraction: float


class FaultPlan:
    """Draws a fault per request from a seeded stream (same seed, same request order, same
    faults), so a failing test reproduces."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def draw(self) -> FaultDraw:
        c = self.config
        r = self._rng
        lo, hi = c.latency_ms
        latency = r.uniform(lo, hi) / 1000.0 if hi > 0 else 0.0
        u = r.random()
        kind = None
        for name, p in (
            ("drop", c.drop_connection),
            ("500", c.http_500),
            ("503", c.http_503),
            ("truncate", c.truncated_json),
        ):
            if u < p:
                kind = name
                break
            u -= p
        return FaultDraw(kind, latency, r.uniform(0.1, 0.9))
