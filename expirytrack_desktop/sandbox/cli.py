"""Command-line front of the simulator, shared by ``python -m expirytrack_desktop.sandbox``
and ``expirytrack demo-server``."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TYPE_CHECKING

from expirytrack_desktop.settings import DEFAULT_RATE_LIMIT

if TYPE_CHECKING:  # the simulator itself (numpy) is imported only when a server is started
    from expirytrack_desktop.sandbox.app import SimulatorApp

SHORT_INTERVALS = ("1minute", "3minute", "5minute", "15minute")
LONG_INTERVALS = ("30minute", "day")


def add_server_options(p: argparse.ArgumentParser, *, rate_limit_option: bool = True) -> None:
    """Options of the simulator server (``--rate-limit`` may come from a parent parser)."""
    p.add_argument("--port", type=int, default=0, help="loopback port (0 = any free port)")
    p.add_argument("--seed", type=int, default=7, help="market seed (default 7)")
    p.add_argument("--today", type=date.fromisoformat, help="market's today, YYYY-MM-DD")
    p.add_argument("--strikes-per-side", type=int, default=10)
    p.add_argument(
        "--no-stocks",
        action="store_true",
        help="only the indices (and VEDL): leave out the ~220 simulated stock underlyings",
    )
    p.add_argument(
        "--span-cap",
        type=int,
        metavar="DAYS",
        help="reject 1-15 minute candle requests spanning more days (UDAPI1148)",
    )
    p.add_argument(
        "--span-cap-long", type=int, metavar="DAYS", help="same for 30minute and day candles"
    )
    if rate_limit_option:
        p.add_argument(
            "--rate-limit",
            metavar="SPEC",
            help=f'limits "COUNT/SECONDS,..." (default "{DEFAULT_RATE_LIMIT}")',
        )
    p.add_argument("--no-rate-limit", action="store_true", help="do not enforce rate limits")
    p.add_argument("--fault-500", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-503", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-truncated", type=float, default=0.0, metavar="P")
    p.add_argument("--fault-drop", type=float, default=0.0, metavar="P")
    p.add_argument("--latency-ms", default="0,0", metavar="LO,HI")
    p.add_argument("--fault-seed", type=int, default=1)
    p.add_argument("--log-level", default="warning")


def app_from_args(args: argparse.Namespace) -> SimulatorApp:
    from expirytrack_desktop.sandbox.app import SimulatorApp
    from expirytrack_desktop.sandbox.faults import FaultConfig
    from expirytrack_desktop.sandbox.market import Market

    lo, _, hi = str(args.latency_ms).partition(",")
    faults = FaultConfig(
        http_500=args.fault_500,
        http_503=args.fault_503,
        truncated_json=args.fault_truncated,
        drop_connection=args.fault_drop,
        latency_ms=(int(lo or 0), int(hi or lo or 0)),
        seed=args.fault_seed,
    )
    caps: dict[str, int] = {}
    if args.span_cap:
        caps.update(dict.fromkeys(SHORT_INTERVALS, args.span_cap))
    if args.span_cap_long:
        caps.update(dict.fromkeys(LONG_INTERVALS, args.span_cap_long))
    limit = (
        None if args.no_rate_limit else (getattr(args, "rate_limit", None) or DEFAULT_RATE_LIMIT)
    )
    market = Market(
        seed=args.seed,
        today=args.today,
        strikes_per_side=args.strikes_per_side,
        stocks=not getattr(args, "no_stocks", False),
    )
    return SimulatorApp(market, rate_limit=limit, span_cap_days=caps, faults=faults)


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C."""
    from expirytrack_desktop.sandbox.app import DEMO_ACCESS_TOKEN, demo_client_credentials
    from expirytrack_desktop.sandbox.server import LOOPBACK, _bind, make_server
    from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH

    app = app_from_args(args)
    sock = _bind(LOOPBACK, args.port)
    url = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    demo = demo_client_credentials()
    print(f"Upstox simulator on {url}  (market seed {args.seed}, today {app.market.today})")
    print(f"demo access token: {DEMO_ACCESS_TOKEN}")
    print(f"instrument master: {url}{INSTRUMENT_MASTER_PATH}")
    print(f"demo OAuth client: id={demo.client_id} redirect_uri={demo.redirect_uri}")
    print(f"rate limit: {app.rate_limit or 'off'}; span caps: {app.span_cap_days or 'none'}")
    print("Ctrl-C stops it.", flush=True)
    try:
        make_server(app, args.log_level).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m expirytrack_desktop.sandbox",
        description="Run the built-in Upstox simulator on a loopback port.",
    )
    add_server_options(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
