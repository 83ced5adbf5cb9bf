"""The fast ingest path: candle responses stay JSON text until SQLite parses them.

Python-side decoding (``json.loads`` plus a tuple and a timestamp parse per candle) costs about
three times a raw ``executemany``; ``Database.store_window_json`` lets SQLite's C JSON parser
and ``unixepoch`` do it inside the write transaction instead. The engine takes this path when
the client offers ``get_candles_json(expired_key, interval, from_date, to_date) -> bytes`` (the
raw body of one successful candle request, after the client's own retries and error mapping);
otherwise it uses ``get_candles`` through :func:`expirytrack_desktop.upstox.span.fetch_window`.

The span loop mirrors ``span.fetch_window`` (same :class:`SpanPolicy`: widest believed span,
learn on an invalid-range rejection, serialise probes wider than any accepted span).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from expirytrack_desktop.upstox.errors import InvalidDateRangeError
from expirytrack_desktop.upstox.span import SpanPolicy


@dataclass(slots=True)
class JsonWindowFetch:
    bodies: list[bytes] = field(default_factory=list)  # one per accepted sub-window
    requests: int = 0
    subwindows: list[tuple[date, date]] = field(default_factory=list)
    rejected: int = 0


def supports_json(client: Any) -> bool:
    return callable(getattr(client, "get_candles_json", None))


async def fetch_window_json(
    client: Any,
    expired_key: str,
    interval: str,
    from_date: date,
    to_date: date,
    policy: SpanPolicy,
) -> JsonWindowFetch:
    """Raw candle bodies covering [from_date, to_date], in spans the server accepts."""
    if to_date < from_date:
        raise ValueError(f"to_date {to_date} is before from_date {from_date}")
    result = JsonWindowFetch()
    cursor = from_date
    while cursor <= to_date:
        span = min(policy.cap_days(interval), (to_date - cursor).days + 1)
        async with policy.probing(interval, span):
            span = min(span, policy.cap_days(interval))
            end = cursor + timedelta(days=span - 1)
            result.requests += 1
            try:
                body = await client.get_candles_json(expired_key, interval, cursor, end)
            except InvalidDateRangeError:
                if span <= 1:
                    raise
                result.rejected += 1
                policy.learn(interval, span)
                continue
            policy.confirm(interval, span)
        result.bodies.append(body)
        result.subwindows.append((cursor, end))
        cursor = end + timedelta(days=1)
    return result
