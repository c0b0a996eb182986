"""A server that keeps rerunning keeps nothing: every page, rerun with new settings again and again,
leaves no Python memory behind once the collector has run, and no figure hands Plotly a numpy object
array (orjson 3.8 kept every one it was given, ijl/orjson#422: the lecture-hall server grew by each
heatmap's hover strings, ~0.1 MiB a rerun)."""

from __future__ import annotations

import gc
import sys

import numpy as np
import plotly.io
import pytest
from pandas._libs.internals import BlockValuesRefs
from streamlit.testing.v1 import AppTest

from tests.test_app import APP, FAST_CLIP, PAGES, TIMEOUT, assert_ok, navigation_mode  # noqa: F401 - the fixture

RERUN_PAGES = ["gradient_flow", "spectrum", "clipping", "truncation", "calculator"]
# Reruns cycle through a few seeds: after the first round every computation is a cache hit, so the
# caches stop growing and what a rerun still keeps is the page's own (drawing, serialising, state).
SEEDS = 4
ROUNDS_WARM, ROUNDS_MEASURED = 2, 4
LEAK_BLOCKS = 20  # per rerun; the orjson leak kept ~1300 at the defaults


def open_via_router(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (FAST_CLIP if page == "clipping" else {}).items():
        at.query_params[k] = v
    at.run()
    return at.switch_page(PAGES[page][0]).run()


def rerun_with_seed(at: AppTest, seed: int, page: str) -> None:
    at.number_input(key="m_seed").set_value(seed).run()
    assert_ok(at, page)


def settle() -> None:
    """Full collections until one frees nothing (a cycle reached through a weakref callback or a
    finaliser takes a second pass), and pandas' copy-on-write lists of views without their dead
    weakrefs: pandas prunes a list itself only once it holds 500 (bounded, so not counted here)."""
    while gc.collect():
        pass
    for obj in gc.get_objects():
        if type(obj) is BlockValuesRefs:
            obj.referenced_blocks[:] = [ref for ref in obj.referenced_blocks if ref() is not None]


def object_arrays(obj, path: str = "") -> list[str]:
    if isinstance(obj, np.ndarray):
        return [path] if obj.dtype == object else []
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in object_arrays(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in object_arrays(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("page", list(PAGES))
def test_no_figure_hands_plotly_an_object_array(page, monkeypatch):
    found: list[str] = []
    to_json = plotly.io.to_json

    def checked(fig, *a, **k):  # what st.plotly_chart serialises: the figure as a dict of arrays
        found.extend(object_arrays(fig))
        return to_json(fig, *a, **k)

    monkeypatch.setattr(plotly.io, "to_json", checked)
    at = open_via_router(page)
    assert_ok(at, page)
    assert not found, found


@pytest.mark.parametrize("page", RERUN_PAGES)
def test_reruns_leave_no_memory_behind(page):
    at = open_via_router(page)
    seed = at.session_state["m_seed"]
    for k in range(ROUNDS_WARM * SEEDS):
        rerun_with_seed(at, seed + 1 + k % SEEDS, page)
    settle()
    before = sys.getallocatedblocks()
    for k in range(ROUNDS_MEASURED * SEEDS):
        rerun_with_seed(at, seed + 1 + k % SEEDS, page)
    settle()
    per_rerun = (sys.getallocatedblocks() - before) / (ROUNDS_MEASURED * SEEDS)
    assert per_rerun < LEAK_BLOCKS, f"{page}: {per_rerun:.0f} blocks kept per rerun"
