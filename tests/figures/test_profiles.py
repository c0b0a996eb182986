"""Profiles (bptt_core.figures.profiles): the lag profile with its envelope and horizon, the LSTM block in
every title, the depth x time picture."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bptt_core import layer_reach
from bptt_core.figures.heatmaps import gradient_flow_heatmap
from bptt_core.figures.profiles import lag_profile_figure, layer_reach_figure
from tests.helpers.figures import arr


def test_lag_profile_draws_the_envelope_and_the_horizon():
    prof = np.array([1.0, 0.2, -0.6, -1.4, -2.2])
    fig = lag_profile_figure(prof, rate=-0.8, gamma_sigma1=0.5, horizon=3, threshold=1e-3)
    env = next(t for t in fig.data if t.name.startswith("bound"))
    np.testing.assert_allclose(arr(env.y), prof[0] + np.arange(5) * math.log10(0.5))
    assert any(s.type == "line" and s.x0 == 3 for s in fig.layout.shapes)  # the memory horizon
    assert all(t in ("1", "10") or t.startswith("1e") for t in fig.layout.yaxis.ticktext)


def test_lstm_cell_block_is_named_in_every_title():
    prof = np.array([0.0, -0.1, -0.2])
    assert "∂c(t)/∂c(t−k)" in lag_profile_figure(prof, rate=-0.1, block="c").layout.title.text
    L = np.array([[0.0, np.nan], [-0.1, 0.0]])
    assert "∂c(t)/∂c(s)" in gradient_flow_heatmap(L, block="c").layout.title.text
    assert "∂c(t)/∂c(t−k)" in gradient_flow_heatmap(L, block="c", lag=True).layout.title.text


def test_a_flat_decay_rate_is_labelled_as_a_factor_not_an_exponent_in_an_exponent():
    fig = lag_profile_figure(np.array([0.9, 0.9, 0.9, 0.9]), rate=-9.17e-11)
    fit = next(t for t in fig.data if t.name.startswith("fitted"))
    assert "×1 per step" in fit.name and "<sup>" not in fit.name


# == The depth x time picture ================================================================================


def test_layer_reach_figure_puts_the_top_layer_first():
    torch.manual_seed(0)
    m = nn.GRU(2, 4, num_layers=3).double()
    x = torch.randn(12, 2, dtype=torch.float64)
    R = layer_reach(m, x, t=9)
    fig = layer_reach_figure(R, t=9)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert list(fig.data[0].y) == ["layer 2 (top)", "layer 1", "layer 0"]
    np.testing.assert_allclose(z[0, :10], R[2, :10])  # finite part, top layer first
    assert "step 10" in fig.layout.title.text
    assert np.isneginf(R[0, 9]) and np.isneginf(R[1, 9])  # at s = t the lower layers' h_t is held fixed
