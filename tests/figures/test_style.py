"""The house style (bptt_core.figures.style): every figure has a title and labelled axes, lecture mode
enlarges all text, and figures are serialised by a JSON engine that lets go of its memory."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io
import pytest

from bptt_core.figures.profiles import loss_gradient_figure
from bptt_core.figures.style import json_engine_for, serialise_figures_safely, style
from bptt_core.figures.training import comparison_figure
from tests.helpers.apptest import navigation_mode  # noqa: F401 - the fixture
from tests.helpers.figures import _every_figure
from tests.helpers.memory import settle


@pytest.mark.parametrize("name", list(_every_figure()))
def test_every_figure_has_a_title_and_labelled_axes(name):
    fig = _every_figure()[name]
    assert isinstance(fig, go.Figure)
    assert fig.layout.title.text
    if name != "diagram":
        axes = [a for a in (fig.layout.xaxis, fig.layout.yaxis) if a.title.text]
        assert len(axes) == 2 or name == "comparison", name


def test_style_lecture_enlarges_type():
    fig = style(loss_gradient_figure(np.array([1.0, 2.0])), lecture=True)
    assert fig.layout.font.size > 14


def test_lecture_mode_enlarges_subplot_titles_and_labels_too():
    df = pd.DataFrame(dict(variant=["full BPTT", "RTRL"], memory_bytes=[100, 900], time_per_update_s=[1e-3, 1e-2],
                           cosine=[1.0, 1.0]))  # fmt: skip
    for fig in (comparison_figure(df),):
        style(fig, lecture=True)
        assert fig.layout.annotations and all(a.font.size >= 20 for a in fig.layout.annotations)


# == Serialising figures without leaking memory ==============================================================

DRAWS = 200  # serialisations measured: enough that one-off allocations (first-use caches) round to 0

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
