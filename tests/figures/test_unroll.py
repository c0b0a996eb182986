"""The unrolled chain's figures (bptt_core.figures.unroll): each shows the chain it is given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bptt_core.figures.profiles import contributions_figure
from bptt_core.figures.unroll import (
    nonnormality_figure,
    unroll_chain_figure,
    unroll_saturation_figure,
    unroll_singular_values_figure,
    unroll_slopes_heatmap,
)
from bptt_core.flow.unroll import SATURATION_THRESHOLD, unroll
from bptt_core.learning.truncation import attach_contribution
from tests.helpers.unroll import CELLS, H, T, _x


@pytest.mark.parametrize("name", ["elman-tanh", "nn.LSTM"])
def test_unroll_figures_show_the_chain(name):
    rnn = CELLS[name]()
    readout = torch.nn.Linear(H, 1)
    x = _x().float()
    u = attach_contribution(unroll(rnn, x, 6, 1), rnn, readout, x, torch.zeros(T, 1))
    chain = unroll_chain_figure(u)
    run, bound, bars = chain.data
    assert run.y[-1] == u.value and list(run.x) == list(range(2, 8))  # steps s+1 .. t+1, 1-indexed
    np.testing.assert_array_equal(bound.y, u.bound_log10)
    assert len(bars.x) == 5 and "∂h(7)/∂h(2)" in chain.layout.title.text
    sv = unroll_singular_values_figure(u)
    assert len(sv.data[0].x) == u.factor_singular_values.size
    sat = unroll_saturation_figure(u, SATURATION_THRESHOLD)
    assert len(sat.data) == len(u.derivatives)
    for k in u.derivatives:
        hm = unroll_slopes_heatmap(u, k)
        assert np.asarray(hm.data[0].z).shape == (H, 5)
    nn_fig = nonnormality_figure(u)
    np.testing.assert_array_equal(nn_fig.data[0].y, u.power_log10)
    c = contributions_figure(u.contribution_norms, u.t)
    assert len(c.data[0].x) == u.t + 1
    for f in (chain, sv, sat, nn_fig):
        f.to_json()
