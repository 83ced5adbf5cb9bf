"""ExpiryTrack Desktop: expired Indian F&O 1-minute history from Upstox into SQLite."""

import os

__version__ = "0.1.0"
APP_NAME = "ExpiryTrack"

# numpy's OpenBLAS starts a thread per core when it loads, and they spin: ~60 ms of CPU per
# core just after the import, taken from an export's readers on a 2-core machine (perf,
# bench/RESULTS.md "Exports, Arrow path"). Nothing here multiplies matrices (every numpy use
# is element-wise), so one thread is all OpenBLAS needs. Set before numpy is first imported;
# an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
