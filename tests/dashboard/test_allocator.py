"""The server's malloc settings: large blocks a session thread frees go back to the system at once.

The scenario is the one that made the lecture-hall server grow: a thread allocates big blocks (step
Jacobians, figure strings) between small ones that stay alive, then frees the big ones. With glibc's
defaults the small survivors pin the heap and nothing is returned; after ``tune_for_server`` it all is.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard import allocator

ROOT = Path(__file__).resolve().parents[2]

CHURN = """
import gc, sys, threading
import psutil
if sys.argv[1] == "tuned":
    from dashboard.allocator import tune_for_server
    assert tune_for_server()
proc = psutil.Process()
released = []

def churn():
    warm = bytearray(2**20)
    del warm  # a freed mapped block raises glibc's dynamic mmap threshold to 1 MiB
    big, small = [], []
    for _ in range(200):
        big.append(bytearray(2**20))  # 1 MiB, touched
        small.append(bytearray(2000))  # stays alive after it
    before = proc.memory_info().rss
    del big
    gc.collect()
    released.append((before - proc.memory_info().rss) / 2**20)

t = threading.Thread(target=churn)
t.start()
t.join()
print(released[0])
"""


def released_mib(script: str, mode: str) -> float:
    """Run a scenario in a fresh interpreter ("plain" or "tuned"); the MiB it gave back."""
    run = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(run.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_blocks_return_to_the_system_after_tuning():
    assert released_mib(CHURN, "plain") < 100  # the defaults keep (nearly) all 200 MiB: the problem is real here
    assert released_mib(CHURN, "tuned") > 190  # the tuned process gives it all back


HOLES = """
import gc, sys, threading, time
import psutil
from dashboard import allocator
allocator.TRIM_EVERY = 0.2
if sys.argv[1] == "tuned":
    assert allocator.tune_for_server()
proc = psutil.Process()
released = []

def churn():
    blocks = [bytearray(20_000) for _ in range(10_000)]  # 200 MB of blocks under the mmap threshold
    before = proc.memory_info().rss
    del blocks[::2]  # every other one freed: 100 MB of holes between survivors, no free heap top
    gc.collect()
    time.sleep(1.0)
    released.append((before - proc.memory_info().rss) / 2**20)

t = threading.Thread(target=churn)
t.start()
t.join()
print(released[0])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_holes_between_small_blocks_are_handed_back_by_the_trimming_thread():
    assert released_mib(HOLES, "plain") < 30  # the holes stay resident
    assert released_mib(HOLES, "tuned") > 60  # of the ~100 MB freed (the whole pages inside the 20 kB holes: ~80%)


def test_tuning_is_applied_once_and_reports_it(monkeypatch):
    assert allocator.tune_for_server() is allocator.tune_for_server()  # cached: one call per process
    allocator.tune_for_server.cache_clear()
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)  # no C library found
    try:
        assert allocator.tune_for_server() is False
    finally:
        allocator.tune_for_server.cache_clear()


def test_freezing_happens_once_and_the_pages_do_it_after_their_imports():
    from dashboard import compute

    compute.numerics()
    assert allocator._modules_when_frozen[0] > 0  # numerics() froze what was loaded (torch among it)
    allocator.freeze_new_imports()  # what other tests imported since, if anything
    frozen = gc.get_freeze_count()
    assert frozen > 100_000  # the libraries
    assert allocator.freeze_new_imports() is False  # once: nothing new was imported since
    # Frozen objects still die by reference count (the count can fall), but nothing unfroze them.
    assert gc.get_freeze_count() > 0.9 * frozen


def test_new_imports_are_frozen_once_and_nothing_else_is(monkeypatch):
    """Streamlit collects garbage after every rerun: what a page's first import loaded is frozen out
    of that pass at the end of the rerun, and a rerun that imported nothing freezes nothing."""
    import gc
    import sys
    import types

    monkeypatch.setattr(allocator, "_modules_when_frozen", [0])
    assert allocator.freeze_new_imports() is True  # the libraries of this process
    assert allocator.freeze_new_imports() is False  # nothing imported since
    frozen = gc.get_freeze_count()
    monkeypatch.setitem(sys.modules, "a_page_s_first_import", types.ModuleType("a_page_s_first_import"))
    library = [[i] for i in range(5000)]  # what the import made, alive (tracked containers)
    assert allocator.freeze_new_imports() is True
    assert gc.get_freeze_count() >= frozen + 5000
    assert len(library) == 5000
