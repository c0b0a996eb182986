"""The player's figures (bptt_core.figures.player): one animation frame per weight snapshot on one colour
scale, opened at the chosen frame, and the frames reach the browser whole through Streamlit."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from bptt_core.config import ModelConfig
from bptt_core.figures.player import (
    player_dh_figure,
    player_eigenvalue_figure,
    player_heatmap_figure,
    player_lyapunov_figure,
    player_singular_values_figure,
    show_frame,
)
from bptt_core.learning.player import eigen_paths, frames
from bptt_core.learning.training import TrainConfig, train
from tests.helpers.player import PLAYER_SMALL

PLAYER_FIGURES = [
    player_heatmap_figure,
    player_dh_figure,
    player_singular_values_figure,
    player_lyapunov_figure,
    player_eigenvalue_figure,
]


@pytest.mark.parametrize("build", PLAYER_FIGURES, ids=lambda f: f.__name__)
def test_player_figure_has_one_frame_per_snapshot_showing_step_and_loss(build, clipped_run):
    fr = frames(clipped_run, n_lyapunov=2)
    fig = build(fr)
    assert len(fig.frames) == len(fr) == len(clipped_run.snapshots)
    names = [f.name for f in fig.frames]
    assert len(set(names)) == len(names)
    for gf, f in zip(fig.frames, fr, strict=True):
        loss = f"{f.loss:.4g}"
        assert f"step {f.step}" in gf.name and loss in gf.name
        assert f"training step {f.step}" in gf.layout.title.text and loss in gf.layout.title.text
        if "clip" in f.reasons:
            assert "clipped" in gf.layout.title.text
    assert any("clip" in f.reasons for f in fr), "this run clips: a clip event must be among the frames"
    # the first frame is what the figure shows before playing
    assert fig.layout.title.text == fig.frames[0].layout.title.text
    # play runs the frames in the browser: an animate button over all frames (args[0] None), and a
    # slider step per frame that jumps to it by name
    (menu,) = fig.layout.updatemenus
    play = menu.buttons[0]
    assert play.method == "animate" and play.args[0] is None and play.args[1]["frame"]["duration"] > 0
    assert menu.buttons[1].method == "animate" and list(menu.buttons[1].args[0]) == [None]  # pause
    (slider,) = fig.layout.sliders
    assert [list(s.args[0]) for s in slider.steps] == [[n] for n in names]
    assert [s.label for s in slider.steps] == [str(f.step) for f in fr]
    fig.to_json()  # serialises (what the page and the HTML report do)


def test_player_heatmap_frames_carry_each_snapshots_matrix_on_one_colour_scale(clipped_run):
    fr = frames(clipped_run)
    fig = player_heatmap_figure(fr)
    vals = np.concatenate([f.L[np.isfinite(f.L)] for f in fr])
    zmin, zmax = fig.data[0].zmin, fig.data[0].zmax
    assert zmin == pytest.approx(vals.min()) and zmax == pytest.approx(vals.max())
    for gf, f in zip(fig.frames, fr, strict=True):
        z = np.asarray(gf.data[0].z, dtype=float)
        fin = np.isfinite(f.L)
        np.testing.assert_array_equal(z[fin], f.L[fin])


def test_player_eigenvalue_paths_grow_frame_by_frame(clipped_run):
    fr = frames(clipped_run)
    P = eigen_paths([f.eigenvalues for f in fr])
    fig = player_eigenvalue_figure(fr, P)
    H = P.shape[1]
    for i, gf in enumerate(fig.frames):
        path, dots = gf.data
        assert len(path.x) == H * (i + 2)  # i + 1 points per eigenvalue and a gap between paths
        np.testing.assert_array_equal(np.asarray(dots.x), P[i].real)
        np.testing.assert_array_equal(np.asarray(dots.y), P[i].imag)


def test_player_refuses_a_run_without_snapshots():
    r = train(ModelConfig(task="gaussian", **PLAYER_SMALL), TrainConfig(steps=2, batch_size=2, snapshots=0))
    assert r.snapshots == [] and frames(r) == []
    with pytest.raises(ValueError, match="frames must hold at least one snapshot"):
        player_heatmap_figure([])


def _json(v) -> str:
    import json

    import plotly.utils

    return json.dumps(v, cls=plotly.utils.PlotlyJSONEncoder)


@pytest.mark.parametrize("build", PLAYER_FIGURES, ids=lambda f: f.__name__)
def test_show_frame_opens_the_animation_at_that_frame(build, clipped_run):
    fr = frames(clipped_run, n_lyapunov=2)
    i = len(fr) - 2
    fig = show_frame(build(fr), i)
    assert fig.layout.sliders[0].active == i
    assert fig.layout.title.text == fig.frames[i].layout.title.text
    assert f"training step {fr[i].step}" in fig.layout.title.text
    frame = fig.frames[i]
    for idx, trace in zip(frame.traces, frame.data, strict=True):  # what the figure draws is frame i's data
        for k, v in trace.to_plotly_json().items():
            if k != "type":
                assert _json(fig.data[idx][k]) == _json(v), (idx, k)
    assert show_frame(build(fr), 0).layout.title.text == fig.frames[0].layout.title.text
    with pytest.raises(ValueError, match="index"):
        show_frame(build(fr), len(fr))
    with pytest.raises(ValueError, match="no frames"):
        show_frame(go.Figure(), 0)


# == The frames reach the browser whole ======================================================================

PLAYER_APP = """
import streamlit as st
from bptt_core.learning import player
from bptt_core.config import ModelConfig
from bptt_core.figures.player import player_heatmap_figure
from bptt_core.learning.training import TrainConfig, train

r = train(ModelConfig(seq_len=6, hidden_size=4, task="gaussian"), TrainConfig(steps=4, batch_size=2, snapshots=3))
fr = player.frames(r, n_lyapunov=1)
st.session_state["labels"] = [f.label for f in fr]
st.plotly_chart(player_heatmap_figure(fr), key="player")
"""


def test_the_players_frames_reach_the_browser_whole():
    """Streamlit hands the figure to Plotly.js with its frames, slider and play button: playing runs there."""
    at = AppTest.from_string(PLAYER_APP, default_timeout=120).run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    labels = at.session_state["labels"]
    assert [f["name"] for f in spec["frames"]] == labels and len(labels) == 3
    (slider,) = spec["layout"]["sliders"]
    assert [s["args"][0] for s in slider["steps"]] == [[n] for n in labels]
    play = spec["layout"]["updatemenus"][0]["buttons"][0]
    assert play["method"] == "animate" and play["args"][0] is None
