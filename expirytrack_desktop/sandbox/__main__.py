"""``python -m expirytrack_desktop.sandbox --port N``: the simulator in the foreground."""

import sys

from expirytrack_desktop.sandbox.cli import main

sys.exit(main())
