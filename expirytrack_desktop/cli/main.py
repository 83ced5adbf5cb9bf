"""``expirytrack`` entry point: argparse, one sub-module per command group.

Each command module exposes ``register(subparsers, common)``; the parser it adds sets
``func(args) -> int`` (an exit code from :mod:`expirytrack_desktop.cli.exitcodes`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from expirytrack_desktop import __version__
from expirytrack_desktop.cli import exitcodes, textio

# Command modules and the commands each registers, imported lazily: a command imports only its
# own module (`expirytrack status` neither httpx nor pyarrow); help and unknown words import all.
# tests/test_cli_startup.py checks this table against what the modules register.
COMMANDS: dict[str, tuple[str, ...]] = {
    "expirytrack_desktop.cli.collect_cmd": ("collect", "status", "jobs", "retry"),
    "expirytrack_desktop.cli.auth_cmd": ("configure", "login", "logout", "whoami"),
    "expirytrack_desktop.cli.export_cmd": ("export",),
    "expirytrack_desktop.cli.sandbox_cmd": ("demo-server",),
    "expirytrack_desktop.cli.schedule_cmd": ("schedule",),
    "expirytrack_desktop.cli.notify_cmd": ("notify",),
    "expirytrack_desktop.cli.verify_cmd": ("verify",),
    "expirytrack_desktop.cli.chain_cmd": ("chain",),
    "expirytrack_desktop.cli.underlyings_cmd": ("underlyings",),
    "expirytrack_desktop.cli.watch_cmd": ("watch",),
    "expirytrack_desktop.cli.s3_cmd": ("s3",),
}
COMMAND_MODULES = tuple(COMMANDS)
COMMAND_NAMES = frozenset(c for names in COMMANDS.values() for c in names)


def common_options() -> argparse.ArgumentParser:
    """Options every command accepts."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", metavar="PATH", help="SQLite database file (env EXPIRYTRACK_DB)")
    p.add_argument(
        "--api-base", metavar="URL", help="Upstox API base URL (env EXPIRYTRACK_API_BASE)"
    )
    p.add_argument(
        "--instruments-url",
        metavar="URL",
        help="Upstox instrument master (.json.gz URL or local file) for symbols such as "
        "RELIANCE (env EXPIRYTRACK_INSTRUMENTS_URL)",
    )
    p.add_argument(
        "--rate-limit",
        metavar="SPEC",
        help='request limits "COUNT/SECONDS,..." (default "50/1,500/60,2000/1800"; '
        "env EXPIRYTRACK_RATE_LIMIT)",
    )
    p.add_argument("--demo", action="store_true", help="use the built-in demo market")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; ``command``: only the module that registers it (faster start)."""
    parser = argparse.ArgumentParser(
        prog="expirytrack",
        description="Collect and export historical data of expired Indian F&O contracts.",
        epilog="Exit codes: 0 complete, 1 internal error, 2 bad input, 3 needs login, "
        "4 finished with failed items, 5 storage problem, 6 network unreachable, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    modules = [m for m, names in COMMANDS.items() if command in names] or COMMAND_MODULES
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name != name:
                raise
            continue
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    textio.robust_streams()
    problem = textio.check_text(argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return exitcodes.BAD_INPUT
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words and words[0] in COMMAND_NAMES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return exitcodes.BAD_INPUT
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from expirytrack_desktop.cli.migrate_bar import MigrationBar
    from expirytrack_desktop.runtime import report_migrations

    report_migrations(MigrationBar(sys.stderr))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(
            "Cancelled; progress so far is kept. Run the same command to continue.", file=sys.stderr
        )
        return exitcodes.CANCELLED
    except Exception as exc:
        from expirytrack_desktop.upstox.ledger import LedgerError
        from expirytrack_desktop.upstox.limiter import RateLimitSpecError

        if isinstance(exc, LedgerError):  # any command that talks to the API opens the ledger
            print(f"error: {exc}", file=sys.stderr)
            return exitcodes.STORAGE
        if isinstance(exc, RateLimitSpecError):  # ... and reads the rate limit
            print(f"error: invalid rate limit: {exc}", file=sys.stderr)
            return exitcodes.BAD_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
