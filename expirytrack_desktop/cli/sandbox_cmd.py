"""``expirytrack demo-server``: run the built-in Upstox simulator on a loopback port."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from expirytrack_desktop.sandbox.cli import run

    return run(args)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from expirytrack_desktop.sandbox.cli import add_server_options

    p = subparsers.add_parser(
        "demo-server",
        parents=[common],
        help="run the built-in Upstox simulator (demo market) on 127.0.0.1",
        description="Serve a synthetic market through a faithful copy of the Upstox API on "
        "127.0.0.1, for demos and tests. Prints the URL and the demo access token.",
    )
    add_server_options(p, rate_limit_option=False)
    p.set_defaults(func=_run)
