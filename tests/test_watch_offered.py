"""A watch run's expiry lists: asked several at once (the whole universe's 231 one after
another took ~40 s), reported in the selection's order, a refused underlying left out."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.watchlist import LISTS_IN_FLIGHT, offered_expiries
from expirytrack_desktop.upstox.errors import BadInputError


class SlowClient:
    """Answers each expiry list after a delay that makes later keys finish first."""

    def __init__(self, keys: list[str], refused: set[str], broken: set[str]) -> None:
        self.delays = {k: 0.002 * (len(keys) - i) for i, k in enumerate(keys)}
        self.refused, self.broken = refused, broken
        self.requests_sent = 0
        self.in_flight = self.most = 0

    async def get_expiries(self, key: str) -> list[date]:
        self.requests_sent += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.delays[key])
        finally:
            self.in_flight -= 1
        if key in self.refused:
            raise BadInputError("Invalid instrument key")
        if key in self.broken:
            raise ConnectionError("reset")
        return [date(2025, 4, 24), date(2025, 5, 29)]


async def test_lists_come_in_order_several_at_once():
    keys = [f"NSE_EQ|INE{i:06d}" for i in range(40)]
    client = SlowClient(keys, refused={keys[3]}, broken={keys[7]})
    offered, kept, notes = await offered_expiries(client, Selection(keys, None, "1minute", 3))
    assert kept == [k for k in keys if k != keys[3]]  # the selection's order
    assert list(offered) == [k for k in kept if k != keys[7]]
    assert isinstance(offered.errors[keys[7]], ConnectionError)  # left to the job to report
    assert len(notes) == 1 and keys[3] in notes[0] and "Invalid instrument key" in notes[0]
    assert offered.requests == len(keys) == client.requests_sent
    assert 1 < client.most <= LISTS_IN_FLIGHT


async def test_a_cancel_stops_every_list_still_asked():
    keys = [f"NSE_EQ|INE{i:06d}" for i in range(20)]
    client = SlowClient(keys, set(), set())
    client.delays = dict.fromkeys(keys, 10.0)
    task = asyncio.ensure_future(offered_expiries(client, Selection(keys, None, "1minute", 3)))
    await asyncio.sleep(0.05)
    assert client.in_flight == LISTS_IN_FLIGHT
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.in_flight == 0
