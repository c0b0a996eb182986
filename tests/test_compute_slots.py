"""The server-wide compute slots: never more computations at once than cores, re-entrant per thread."""

from __future__ import annotations

import contextlib
import os
import threading
import time

from dashboard import compute as C


def test_no_more_computations_at_once_than_cores():
    running, peak, lock = [0], [0], threading.Lock()

    def compute():
        with C.compute_slot():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=compute) for _ in range(4 * (os.cpu_count() or 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert peak[0] == (os.cpu_count() or 2)  # all the slots were used, never more


def test_a_nested_computation_takes_no_second_slot():
    """A cached function that calls another inside its slot must not wait for itself."""
    done = threading.Event()

    def nested():
        with contextlib.ExitStack() as stack:
            for _ in range((os.cpu_count() or 2) + 1):  # deeper than there are slots
                stack.enter_context(C.compute_slot())
            done.set()

    t = threading.Thread(target=nested, daemon=True)
    t.start()
    t.join(timeout=10)
    assert done.is_set()
    # and every slot came back
    acquired = [C._SLOTS.acquire(timeout=1) for _ in range(os.cpu_count() or 2)]
    for _ in acquired:
        C._SLOTS.release()
    assert all(acquired)
