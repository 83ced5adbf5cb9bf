"""Heap slack while an export runs (glibc only): its large, short-lived buffers reuse memory.

An export makes a few MiB of buffers per group of candles (the driver's columns, numpy
arrays, CSV/JSON text) and frees them a moment later. glibc returns the freed top of each
thread's heap to the kernel as soon as it exceeds its trim threshold and takes it back
for the next group, so every group paid page faults, page zeroing and TLB shootdowns
between the threads: ~300,000 page faults in the CSV bench. Keeping 64 MiB of slack at the
top of each heap (``M_TOP_PAD``) while any export runs leaves ~40,000, and the CSV export
takes ~13 % less CPU (bench/RESULTS.md, "heap slack"). When the last export ends the pad
goes back to glibc's default and ``malloc_trim`` hands the freed memory back, so the window
does not keep it.

Elsewhere (Windows, macOS, musl) this does nothing: their allocators were not measured.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from typing import Any

M_TOP_PAD = -2  # mallopt parameter numbers, from glibc's <malloc.h>
SLACK = 64 << 20  # 16 MiB: 770,000 faults, 32 MiB: 190,000, 64 MiB: 36,000 (CSV bench)
DEFAULT_TOP_PAD = 128 << 10  # glibc's own (mallopt(3))

_lock = threading.Lock()
_users = 0


@functools.cache
def _glibc() -> Any:
    """The process's glibc (with mallopt and malloc_trim), else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # "glibc 2.36"; not defined elsewhere
            return None
        import ctypes  # here: only an export needs it

        lib = ctypes.CDLL(None)
        lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.malloc_trim.argtypes = [ctypes.c_size_t]
        return lib
    except (AttributeError, OSError, ValueError):  # no os.confstr (Windows), no such name
        return None


@contextlib.contextmanager
def export_slack() -> Iterator[None]:
    """Keep heap slack while the block runs (nested and concurrent exports share it)."""
    global _users
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _users += 1
        if _users == 1:
            libc.mallopt(M_TOP_PAD, SLACK)
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                libc.mallopt(M_TOP_PAD, DEFAULT_TOP_PAD)
                libc.malloc_trim(0)
