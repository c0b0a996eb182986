"""Keep a long-running, many-threaded server's memory flat: glibc malloc settings.

The dashboard serves every browser session from its own thread. glibc gives threads their own
malloc arenas (up to 8 per core) and, by default, raises its mmap threshold to the largest block
freed so far (up to 32 MiB), so the step Jacobians, products and figure strings of one rerun land
in an arena's heap, where a freed block is kept for reuse instead of being returned. Under a class
of sessions that keep changing settings, every arena creeps up to its own high-water mark and the
server's resident memory grows for a long time (measured: bench/bench_load.py). A fixed mmap
threshold returns every large block to the system the moment it is freed, and two arenas bound the
fragmentation between threads (Linux ``mallopt(3)``: M_MMAP_THRESHOLD, M_ARENA_MAX). What small
blocks leave behind, scattered free pages inside the arenas, a background thread hands back every
few seconds (``malloc_trim(3)``, which releases free pages anywhere in every arena).

Python's own collector matters as much. Every rerun leaves reference cycles behind (a page script's
functions and its globals refer to each other, and the globals hold that run's figures and
matrices), and only a full collection frees them. CPython runs one when the objects that survived
since the last grow past a quarter of the long-lived ones: with torch, Plotly and Streamlit loaded
that is some 250 000 objects, so dozens of reruns' garbage waited (up to 73 pages' worth measured
on the Truncated BPTT page; 35 once frozen), and each full pass took ~110 ms.
``freeze_new_imports`` moves what is alive after the imports out of the collector's sight
(``gc.freeze``): full collections then cover only what the sessions made, run often and cost ~nothing.
Streamlit itself runs a full collection after every rerun (``runner.postScriptGC``), so what is
imported later (a page's first visit, Plotly's lazily loaded validators) is frozen too, at the end of
the rerun that imported it (app.py calls it after every rerun, the numerics when torch is first
loaded): measured on the Overview page's slider step, the collection had been ~75 % of the server's rerun.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
import threading
import time

M_MMAP_THRESHOLD = -3  # <malloc.h>
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024  # blocks from 256 KiB up are mapped and unmapped: tensors, big strings
ARENA_MAX = 2
TRIM_EVERY = 5.0  # seconds between two malloc_trim calls (each takes about a millisecond)


@functools.cache
def tune_for_server() -> bool:
    """Apply the settings and start the trimming thread, once per process; False where the C
    library is not glibc (then nothing is changed)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    threading.Thread(target=_trim_forever, args=(libc,), name="malloc-trim", daemon=True).start()
    return ok


_modules_when_frozen = [0]
_freeze_lock = threading.Lock()


def freeze_new_imports() -> bool:
    """At the end of a rerun: when modules were imported since the last freeze (a page's first
    visit, Plotly's lazily loaded validators, a first upload's parser), collect and freeze again, so
    that what they loaded stays out of the full collections Streamlit runs after every rerun (one
    full pass over 250 000 library objects took ~160 ms, most of a rerun). Cheap when nothing was
    imported: one length compared. What a session holds at that moment is frozen with them (refcounts
    still free it; only its reference cycles wait), and imports stop after the first visits, so this
    happens a bounded number of times per process. True when it froze."""
    n = len(sys.modules)
    if n <= _modules_when_frozen[0]:
        return False
    with _freeze_lock:
        if n <= _modules_when_frozen[0]:
            return False
        gc.collect()
        gc.freeze()
        _modules_when_frozen[0] = len(sys.modules)
    return True


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _trim_forever(libc) -> None:
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    while True:
        time.sleep(TRIM_EVERY)
        libc.malloc_trim(0)
