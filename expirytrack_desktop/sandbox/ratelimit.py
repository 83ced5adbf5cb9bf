"""Server-side sliding-window request limits, per user, as Upstox enforces them."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque

Limits = tuple[tuple[int, float], ...]


def parse_rate_limit(spec: str) -> Limits:
    """``"50/1,500/60,2000/1800"`` -> ``((50, 1.0), (500, 60.0), (2000, 1800.0))``."""
    out = []
    for part in spec.split(","):
        count, _, seconds = part.strip().partition("/")
        c, s = int(count), float(seconds)
        if c <= 0 or s <= 0:
            raise ValueError(f"bad rate limit part {part!r}")
        out.append((c, s))
    if not out:
        raise ValueError("empty rate limit")
    return tuple(out)


class SlidingWindows:
    """Accepted-request arrival times of one user; a request is admitted when every window
    ``(now - seconds, now]`` holds fewer than ``count`` earlier admitted requests. Rejected
    requests are not recorded (they do not use up budget)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._longest = max(s for _, s in limits)
        self._times: deque[float] = deque()

    def try_admit(self, now: float) -> bool:
        times = self._times
        while times and times[0] <= now - self._longest:
            times.popleft()
        for count, seconds in self.limits:
            in_window = len(times) - bisect_right(times, now - seconds)
            if in_window >= count:
                return False
        times.append(now)
        return True
