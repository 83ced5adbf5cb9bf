"""Peak memory and time to give up on a 600 MB answer, and time to give up on a trickled one.

A loopback server (plain asyncio, in this process) sends (a) a 600 MB chunked body generated
64 kB at a time, (b) a body at 10 bytes per 0.1 s; the client uses its defaults (64 MB cap)
and ``--deadline`` seconds (default 5 here: the product default is 120 s). Peak RSS is the
process's high-water mark (``ru_maxrss``) after each case, so (a) runs first.

    .venv/bin/python bench/bench_client_limits.py
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from datetime import date

from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.errors import ServerError
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

HUGE = 600 * 1024 * 1024
CHUNK = b"x" * 65536
APR_1, APR_24 = date(2025, 4, 1), date(2025, 4, 24)


async def huge(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    for _ in range(HUGE // len(CHUNK)):
        writer.write(frame)
        await writer.drain()
    writer.write(b"0\r\n\r\n")


async def trickle(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Content-Length: 100000\r\n\r\n")
    for _ in range(10000):
        writer.write(b" " * 10)
        await writer.drain()
        await asyncio.sleep(0.1)


async def case(name: str, answer, deadline: float) -> None:  # type: ignore[no-untyped-def]
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await answer(writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client hung up (or the run ends)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def no_sleep(_s: float) -> None:
        return None

    limiter = RateLimiter(RateLimitSpec.parse("1000/1"))
    async with UpstoxClient(
        f"http://127.0.0.1:{port}",
        access_token="bench",
        limiter=limiter,
        deadline=deadline,
        sleep=no_sleep,
    ) as client:
        t0 = time.perf_counter()
        try:
            await client.get_candles(
                "NSE_FO|1|24-04-2025", "1minute", date(2025, 4, 1), date(2025, 4, 24)
            )
            outcome = "accepted (!)"
        except ServerError as exc:
            outcome = str(exc)
        seconds = time.perf_counter() - t0
    server.close()
    await server.wait_closed()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sent = client.requests_sent
    print(f"{name}: gave up after {seconds:.1f} s, peak RSS {peak:.0f} MB, {sent} requests")
    print(f"  {outcome}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deadline", type=float, default=5.0)
    args = ap.parse_args()
    print(f"start: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    asyncio.run(case("600 MB chunked body", huge, args.deadline))
    asyncio.run(case("body at 100 bytes/s", trickle, args.deadline))


if __name__ == "__main__":
    main()
