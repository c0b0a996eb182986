"""st.cache_data keeps one lock per key it ever computed; every rerun drops those nobody holds
(dashboard.compute.forget_idle_cache_locks), so a class that keeps changing settings leaves none behind."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.caching import cache_data_api

from dashboard import compute as C
from tests.test_app import assert_ok, navigation_mode, open_through_router  # noqa: F401 - the fixture

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
