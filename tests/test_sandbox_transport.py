"""The in-process transport must never swallow a cancellation (Python 3.11's wait_for did)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from expirytrack_desktop.sandbox.transport import SimulatorTransport
from expirytrack_desktop.sandbox.wire import SimResponse


class GatedApp:
    """``handle`` waits until the test opens the gate, then answers 200."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handle(self, method, path, query, headers, body) -> SimResponse:
        self.entered.set()
        await self.gate
        return SimResponse(200, [("content-type", "application/json")], b"{}")


def request(read_timeout: float | None) -> httpx.Request:
    req = httpx.Request("GET", "http://sim.test/v2/user/profile")
    req.extensions["timeout"] = {"read": read_timeout}
    return req


@pytest.mark.parametrize("read_timeout", [5.0, None])
async def test_cancel_as_the_answer_arrives_is_not_lost(read_timeout):
    app = GatedApp()
    transport = SimulatorTransport(app)  # type: ignore[arg-type]
    task = asyncio.ensure_future(transport.handle_async_request(request(read_timeout)))
    await app.entered.wait()
    # The answer becomes ready and the caller is cancelled in the same loop iteration.
    app.gate.set_result(None)
    assert task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_read_timeout_still_raises_read_timeout():
    app = GatedApp()
    transport = SimulatorTransport(app)  # type: ignore[arg-type]
    with pytest.raises(httpx.ReadTimeout):
        await transport.handle_async_request(request(0.01))
    app.gate.cancel()
