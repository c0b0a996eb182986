"""A server that keeps rerunning keeps nothing: pages rerun again and again leave no Python memory
behind once the collector has run, and Plotly never serialises with an orjson that keeps the numpy
object arrays it refuses (before 3.9.6, ijl/orjson#422: the lecture-hall server grew by each
heatmap's hover strings, ~0.1 MiB a rerun)."""

from __future__ import annotations

import gc
import sys

import numpy as np
import plotly.io
import pytest
from pandas._libs.internals import BlockValuesRefs
from streamlit.testing.v1 import AppTest

from bptt_core.figures.style import json_engine_for, serialise_figures_safely
from tests.test_app import assert_ok, navigation_mode, open_through_router  # noqa: F401 - the fixture

RERUN_PAGES = ["gradient_flow", "spectrum", "clipping", "truncation", "calculator"]
# Reruns cycle through a few seeds: after the first round every computation is a cache hit, so the
# caches stop growing and what a rerun still keeps is the page's own (drawing, serialising, state).
SEEDS = 4
ROUNDS_WARM, ROUNDS_MEASURED = 2, 4
LEAK_BLOCKS = 20  # per rerun; the orjson leak kept ~1300 at the defaults
DRAWS = 200  # serialisations measured: enough that one-off allocations (first-use caches) round to 0


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


# orjson release -> the engine Plotly must use: orjson before 3.9.6 keeps every numpy array it refuses.
ENGINES = [
    (None, "auto"),
    ("3.8.3", "json"),
    ("3.9.5", "json"),
    ("3.9.6", "auto"),
    ("3.13.0", "auto"),
    ("4.0.0rc1", "auto"),
]


@pytest.mark.parametrize(("version", "engine"), ENGINES)
def test_plotly_never_serialises_with_a_leaking_orjson(version, engine):
    assert json_engine_for(version) == engine


def test_the_installed_orjson_is_used_only_if_it_lets_go(monkeypatch):
    orjson = pytest.importorskip("orjson")
    try:
        monkeypatch.setattr(orjson, "__version__", "3.8.3")
        assert serialise_figures_safely() == "json"
        monkeypatch.setattr(orjson, "__version__", "3.13.0")
        assert serialise_figures_safely() == "auto"
    finally:
        monkeypatch.undo()
        serialise_figures_safely()


def test_an_object_array_serialised_as_the_pages_do_is_let_go():
    """What a heatmap's hover text goes through on every rerun (st.plotly_chart -> plotly.io.to_json)."""

    def draw():
        plotly.io.to_json({"data": [{"type": "heatmap", "customdata": np.full((50, 50), "1.000e-3", dtype=object)}]})

    for _ in range(5):
        draw()
    settle()
    before = sys.getallocatedblocks()
    for _ in range(DRAWS):
        draw()
    settle()
    assert (sys.getallocatedblocks() - before) / DRAWS < 5  # a leaking orjson keeps the array: ~2500 blocks


@pytest.mark.parametrize("page", RERUN_PAGES)
def test_reruns_leave_no_memory_behind(page):
    at = open_through_router(page)
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
