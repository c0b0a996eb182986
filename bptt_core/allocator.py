"""Keep a long-running, many-threaded server's memory flat: glibc malloc settings.

The dashboard serves every browser session from its own thread. glibc gives threads their own
malloc arenas (up to 8 per core) and, by default, raises its mmap threshold to the largest block
freed so far (up to 32 MiB), so the step Jacobians, products and figure strings of one rerun land
in an arena's heap, where a freed block is kept for reuse instead of being returned. Under a class
of sessions that keep changing settings, every arena creeps up to its own high-water mark and the
server's resident memory grows for a long time (measured: bench/bench_load.py). A fixed mmap
threshold returns every large block to the system the moment it is freed, and two arenas bound the
fragmentation between threads (Linux ``mallopt(3)``: M_MMAP_THRESHOLD, M_ARENA_MAX).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # <malloc.h>
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024  # blocks from 256 KiB up are mapped and unmapped: tensors, big strings
ARENA_MAX = 2


@functools.cache
def tune_for_server() -> bool:
    """Apply the settings once per process; False where the C library is not glibc (no effect)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
