"""What the user's machine can hold: the library refuses only work that cannot fit in its memory; and
computing with one intra-op thread, so that results do not depend on the machine's core count.

Sizes are the user's to choose (a 1024-unit LSTM, a 16384-step sequence); the library estimates the
peak memory of heavy work before starting it and refuses, with a message saying how much it needs
and how much there is, only what this machine cannot hold. The dashboard applies its own, tighter
limits to protect a shared server (``dashboard/budget.py``).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from bptt_core.units import format_bytes


class DoesNotFit(ValueError):
    """Work whose estimated peak memory exceeds what this machine has available."""


def available_bytes() -> int | None:
    """Memory available to a new allocation now (Linux's MemAvailable), else the physical memory, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(need_bytes: float, what: str, available: int | None = None) -> None:
    """Raise :class:`DoesNotFit` when ``need_bytes`` exceed the memory available (``available``, by
    default :func:`available_bytes`); an unknown amount of memory refuses nothing."""
    have = available_bytes() if available is None else available
    if have is not None and need_bytes > have:
        raise DoesNotFit(
            f"{what} needs about {format_bytes(need_bytes)} of memory; this machine has {format_bytes(have)} "
            "available. Lower the sizes, or use a machine with more memory."
        )


_THREADS_LOCK = threading.Lock()


_THREADS_STATE = {"depth": 0, "before": 1}


@contextmanager
def single_thread():
    """One intra-op thread inside this block: a matrix product's reduction order then does not depend on
    the core count, so any machine computes the same bits (the analyses, the sweeps' chunks). Re-entrant
    across threads (torch's setting is global to the process): the last one out restores it."""
    import torch  # here, not at the top: this module is read before anything needs torch

    with _THREADS_LOCK:
        if _THREADS_STATE["depth"] == 0:
            _THREADS_STATE["before"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["depth"] -= 1
            if _THREADS_STATE["depth"] == 0:
                torch.set_num_threads(_THREADS_STATE["before"])
