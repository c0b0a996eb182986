"""The cached analyses (dashboard/compute.py): computed once, views stored once and sent unchanged, a
spinner only on a cache miss, cache locks dropped when nobody holds them; the server-wide compute slots;
one torch thread per computation."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest
import streamlit as st
from streamlit.runtime.caching import cache_data_api
from streamlit.testing.v1 import AppTest

from dashboard import compute as C
from tests.helpers.apptest import (
    assert_ok,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    open_through_router,
    settle,
)
from tests.helpers.fresh_interpreter import run_fresh

# (page, key, value): controls that change only how the figures look
VIEW_ONLY = [
    ("gradient_flow", "gf_view", "t,k"),
    ("gradient_flow", "gf_horizon", "1e-6"),
    ("gradient_flow", "gradient_flow_svg", True),
    ("gradient_flow", "lecture", True),
    ("spectrum", "spectrum_svg", True),
    ("spectrum", "lecture", True),
    ("truncation", "truncation_svg", True),
    ("clipping", "cl_twin", "norm"),
    ("clipping", "clipping_svg", True),
    ("clipping", "lecture", True),
    ("calculator", "calculator_svg", True),
]


@pytest.mark.parametrize("page", ["gradient_flow", "spectrum", "calculator"])
def test_a_spinner_only_on_a_cache_miss(page, monkeypatch):
    """A spinner costs a timer thread and a message even when the work is cached: the pages leave it to the
    caches, which show it on a miss only. A rerun at cached settings starts no spinner; the first one does."""
    import threading

    started = []
    real = threading.Timer.start
    monkeypatch.setattr(threading.Timer, "start", lambda self: started.append(self) or real(self))
    from dashboard.jobs import default_runner

    st.cache_data.clear()
    st.cache_resource.clear()
    default_runner().forget_results()  # the analyses' results (the gradient-flow matrix) are kept there
    at = open_page(page)
    assert started, "no spinner on the first run: the positive control"
    started.clear()
    at.run()
    assert not at.exception and not started, f"{len(started)} spinners on a rerun at cached settings"


@pytest.mark.parametrize(("page", "key", "value"), VIEW_ONLY, ids=[f"{p}-{k}" for p, k, _ in VIEW_ONLY])
def test_a_view_only_control_recomputes_nothing(page, key, value):
    from dashboard import compute

    at = open_page(page)
    assert_ok(at, page)
    before = dict(compute.COMPUTED)
    at.session_state[key] = value
    at.run()
    assert_ok(at, page)
    assert dict(compute.COMPUTED) == before  # no number computed again, no twin retrained


def test_a_norm_seen_before_is_not_computed_again():
    from dashboard import compute

    at = open_page("gradient_flow", {"m_seed": "770077"})  # a seed no other test uses: the first run computes
    counts = [compute.COMPUTED["flow_matrix"]]
    for norm in ("2", "fro", "2"):
        at.session_state["gf_norm"] = norm
        at.run()
        assert_ok(at, "gradient_flow")
        counts.append(compute.COMPUTED["flow_matrix"])
    assert [b - a for a, b in zip(counts, counts[1:], strict=False)] == [1, 0, 0]


def sent_figures(at: AppTest) -> dict[str, str]:
    """Every chart's key -> the figure JSON the page sent."""
    return {c.key: c.proto.spec for c in at.get("plotly_chart")}


@pytest.mark.parametrize("page", ["gradient_flow", "spectrum", "clipping", "truncation", "calculator"])
def test_a_stored_view_is_sent_unchanged_at_every_rerun(page):
    """The figures ready to draw are stored once and handed to every rerun as the same objects
    (st.cache_resource): what a page sends after going to H = 9 and back to 8 equals what it sent first,
    so nothing that shows a view changed the stored one."""
    at = open_page(page, {"m_hidden": "8"})
    assert_ok(at, page)
    first = sent_figures(at)
    at.slider(key="m_hidden").set_value(9).run()
    assert_ok(at, page)
    assert sent_figures(at) != first, "H = 9 drew the same figures: the positive control"
    settle(at.slider(key="m_hidden").set_value(8).run())
    at.run()
    assert_ok(at, page)
    assert sent_figures(at) == first


# == st.cache_data's per-key locks are dropped when nobody holds them ========================================

CALLS: list[int] = []


@st.cache_data(max_entries=4, show_spinner=False)
def _square(x: int) -> int:
    CALLS.append(x)
    return x * x


def caches_named(suffix: str) -> list:
    registry = cache_data_api._data_caches
    return [
        c for by_key in registry._function_caches.values() for c in by_key.values() if c.display_name.endswith(suffix)
    ]


def locks_of(suffix: str) -> int:
    return sum(len(c._value_locks) for c in caches_named(suffix))


def all_locks() -> int:
    registry = cache_data_api._data_caches
    return sum(len(c._value_locks) for by_key in registry._function_caches.values() for c in by_key.values())


def test_streamlit_keeps_a_lock_per_key_ever_computed_and_we_drop_them():
    _square.clear()
    for x in range(50):
        _square(x)
    assert locks_of("._square") == 50  # 4 values kept, 50 locks: what the function works around
    assert C.forget_idle_cache_locks() == 0
    assert locks_of("._square") == 0
    CALLS.clear()
    assert [_square(x) for x in (48, 49)] == [48 * 48, 49 * 49]  # the cached values are untouched
    assert CALLS == []


def test_a_held_lock_is_kept():
    _square.clear()
    _square(7)
    (cache,) = caches_named("._square")
    (key,) = cache._value_locks
    lock = cache.compute_value_lock(key)
    with lock:  # a session computing this value right now
        C.forget_idle_cache_locks()
        assert key in cache._value_locks and cache._value_locks[key] is lock
    C.forget_idle_cache_locks()
    assert key not in cache._value_locks


def test_a_session_changing_settings_leaves_no_locks_behind():
    at = open_through_router("gradient_flow")
    assert_ok(at, "gradient_flow")
    seed = 424_242  # seeds no other test uses: every rerun below must compute
    computed = 0
    for k in range(1, 9):
        before = {key for c in caches_named(".spectrum") for key in c.storage._mem_cache}
        at.number_input(key="m_seed").set_value(seed + k).run()
        assert_ok(at, "gradient_flow")
        after = {key for c in caches_named(".spectrum") for key in c.storage._mem_cache}
        computed += len(after - before)
        assert all_locks() <= 8, all_locks()  # at most this run's own computations (a few per page)
    assert computed == 8  # every rerun computed a new spectrum, yet the locks did not pile up


@st.cache_resource(max_entries=4, show_spinner=False)
def _cube(x: int) -> int:
    return x * x * x


def test_the_resource_caches_locks_are_dropped_too():
    """The figures ready to draw live in st.cache_resource, which keeps a lock per key the same way."""
    from streamlit.runtime.caching import cache_resource_api

    _cube.clear()
    for x in range(20):
        _cube(x)
    registry = cache_resource_api._resource_caches
    (cache,) = [c for by_key in registry._function_caches.values() for c in by_key.values()
                if c.display_name.endswith("._cube")]  # fmt: skip
    assert len(cache._value_locks) == 20
    C.forget_idle_cache_locks()
    assert len(cache._value_locks) == 0
    assert _cube(19) == 19**3


# == The server-wide compute slots: never more computations at once than cores ===============================


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


# == One torch thread per computation ========================================================================


def test_analysis_pages_run_torch_single_threaded():
    """The first computation sets one thread: sessions run in the server's threads on a small machine."""
    got = run_fresh(
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('pages/spectrum.py', default_timeout=120).run()\n"
        "assert not at.exception, at.exception\n"
        "assert len(at.get('plotly_chart')) == 3"
    )
    assert got == {"torch": True, "threads": 1}
