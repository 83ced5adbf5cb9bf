"""Entry script of the frozen app: the same dispatch as ``python -m expirytrack_desktop``.

Both frozen executables (``expirytrack`` and ``expirytrack-desktop``) start here: a CLI command
as the first argument runs the CLI, anything else opens the window. ``--bundle-check`` (only
in a frozen build) prints what the bundle can find at run time, for the smoke test and for
support; see ``build_spec/bundle_check.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _main() -> int:
    # A process pool (if any part of the app ever starts one) re-executes this binary.
    multiprocessing.freeze_support()
    # A windowed executable (Windows/macOS) has no console: give print/tqdm/logging a sink.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    os.environ.setdefault("QT_API", "pyside6")
    if sys.argv[1:2] == ["--bundle-check"]:
        import bundle_check

        return bundle_check.main(sys.argv[2:])
    from expirytrack_desktop.__main__ import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
