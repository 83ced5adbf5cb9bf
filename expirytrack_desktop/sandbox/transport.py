"""In-process httpx transport for the simulator, with faults as they look on the wire."""

from __future__ import annotations

import asyncio

import httpx

from expirytrack_desktop.sandbox.wire import Handler


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Calls :meth:`SimulatorApp.handle` directly (no sockets, no ASGI round trip).

    A dropped connection raises ``httpx.RemoteProtocolError`` as httpx does when a server
    closes mid-body; a truncated body arrives with a Content-Length that matches the cut;
    injected latency beyond the client's read timeout raises ``httpx.ReadTimeout``.
    """

    def __init__(self, app: Handler) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {k.lower(): v for k, v in request.headers.items()}
        call = self.app.handle(request.method, request.url.path, request.url.query, headers, body)
        read_timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            # Not asyncio.wait_for: on Python 3.11 it runs the call in another task and, when
            # that task finishes just as this one is cancelled, returns the result and loses
            # the cancellation. asyncio.timeout runs the call in this task and never does.
            async with asyncio.timeout(read_timeout):
                resp = await call
        except TimeoutError:
            raise httpx.ReadTimeout("simulated read timeout", request=request) from None
        if resp.drop:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            )
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)
