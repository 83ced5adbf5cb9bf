"""``python -m expirytrack_desktop``: the CLI when a command is given, else the window."""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h", "--version")):
        # The window (its own flags): skip the CLI's modules and parser, which import every
        # command module (the simulator pulls in numpy) and would slow the start-up.
        from expirytrack_desktop.app import main as app_main

        return app_main(args)
    from expirytrack_desktop.cli.main import COMMAND_NAMES

    if args and args[0] in COMMAND_NAMES | {"--help", "-h", "--version"}:
        from expirytrack_desktop.cli.main import main as cli_main

        return cli_main(args)
    from expirytrack_desktop.app import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
