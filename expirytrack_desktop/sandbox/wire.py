"""What the simulator answers, as both of its faces put it on the wire.

Its own module so that the ASGI app (``app.py``) and the in-process httpx transport
(``transport.py``) share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class SimResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    drop: bool = False  # close the connection without a complete response


class Handler(Protocol):
    """The one call a transport needs from the simulator (``SimulatorApp.handle``)."""

    async def handle(
        self, method: str, path: str, query: bytes | str, headers: dict[str, str], body: bytes
    ) -> SimResponse: ...
