"""Per-step contributions dl_t/dW = sum_i dl_t/dh_t . dh_t/dh_i . d+h_i/dW, checked in float64.

Three independent checks: the terms sum to autograd's gradient of l_t; for the vanilla cell every
term equals its hand-derived form outer(delta_i, input_i); the last term is the one-step gradient
with h_{t-1} held constant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cells import recurrent_cells, stacked_cells
from torch import nn

from bptt_core.learning.truncation import contribution_norms, contributions

I, H, O, N = 3, 4, 2, 9
TOL = dict(rtol=1e-10, atol=1e-13)

CELLS = {**recurrent_cells(I, H), **{k: v for k, v in stacked_cells(I, H).items() if "relu" not in k}}
VANILLA = [c for c in CELLS if ("RNN" in c or "elman" in c) and "layer" not in c]  # single layer: the hand formula
PARAMS = ["weight_hh_l0", "weight_ih_l0", "bias_hh_l0", "bias_ih_l0"]
TIMES = [0, 1, 4, N - 1]

# phi'(a), written out here rather than borrowed from the library
DERIVATIVE = {
    "tanh": lambda a: 1 - torch.tanh(a) ** 2,
    "relu": lambda a: (a > 0).double(),
    "sigmoid": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    "linear": torch.ones_like,
}
PHI = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda a: a}


def make(cell: str, seed: int = 0):
    torch.manual_seed(seed)
    rnn = CELLS[cell]().double()
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(1.7)  # long-range terms well away from zero
    readout = nn.Linear(H, O).double()
    return rnn, readout, torch.randn(N, I, dtype=torch.float64), torch.randn(N, O, dtype=torch.float64)


def run(rnn, x, state=None):
    """The module on one sequence x (n, I): time-major output (n, H) whatever batch_first says."""
    if getattr(rnn, "batch_first", False):
        out, state = rnn(x[None], state)
        return out[0], state
    out, state = rnn(x[:, None], state)
    return out[:, 0], state


def loss_at(rnn, readout, x, y, t):
    out, _ = run(rnn, x[: t + 1])
    return ((readout(out[t]) - y[t]) ** 2).sum()


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("t", TIMES)
def test_terms_sum_to_autograd(cell, param, t):
    rnn, readout, x, y = make(cell)
    terms = contributions(rnn, readout, x, y, t, param)
    W = dict(rnn.named_parameters())[param]
    assert terms.shape == (t + 1, *W.shape)
    want = torch.autograd.grad(loss_at(rnn, readout, x, y, t), W)[0]
    torch.testing.assert_close(terms.sum(0), want, **TOL)
    if t >= 2 and param in ("weight_hh_l0", "weight_ih_l0") and "relu" not in cell:  # ReLU units may all be off
        assert (terms[1:].reshape(t, -1).norm(dim=1) > 0).all()  # a real decomposition, not one lump


@pytest.mark.parametrize("cell", VANILLA)
@pytest.mark.parametrize("t", [3, N - 1])
def test_vanilla_terms_are_the_hand_derived_ones(cell, t):
    """term_i(W_hh) = outer(delta_i, h_{i-1}), term_i(W_ih) = outer(delta_i, x_i), term_i(b) = delta_i,
    with delta_i = dl_t/dh_i * phi'(a_i) and dl_t/dh_{i-1} = (dl_t/dh_i * phi'(a_i)) W_hh."""
    rnn, readout, x, y = make(cell, seed=1)
    act = getattr(rnn, "nonlinearity", "tanh")
    W_ih, W_hh = rnn.weight_ih_l0.detach(), rnn.weight_hh_l0.detach()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    Wy, by = readout.weight.detach(), readout.bias.detach()
    hs, pre = [torch.zeros(H, dtype=torch.float64)], []
    for i in range(t + 1):
        pre.append(W_ih @ x[i] + W_hh @ hs[-1] + b)
        hs.append(PHI[act](pre[-1]))
    g = 2 * (Wy @ hs[t + 1] + by - y[t]) @ Wy  # dl_t/dh_t
    want_hh, want_ih, want_b = [], [], []
    for i in range(t, -1, -1):
        delta = g * DERIVATIVE[act](pre[i])
        want_hh.insert(0, torch.outer(delta, hs[i]))  # hs[i] is h_{i-1} in the step numbering of x
        want_ih.insert(0, torch.outer(delta, x[i]))
        want_b.insert(0, delta)
        g = delta @ W_hh
    for param, want in [("weight_hh_l0", want_hh), ("weight_ih_l0", want_ih), ("bias_hh_l0", want_b)]:
        torch.testing.assert_close(contributions(rnn, readout, x, y, t, param), torch.stack(want), **TOL)


@pytest.mark.parametrize("cell", list(CELLS))
def test_last_term_is_the_one_step_gradient(cell):
    rnn, readout, x, y = make(cell, seed=2)
    t = 5
    with torch.no_grad():
        _, state = run(rnn, x[:t])  # the state before step t, held constant
    out, _ = run(rnn, x[t : t + 1], state)
    one_step = torch.autograd.grad(((readout(out[0]) - y[t]) ** 2).sum(), rnn.weight_hh_l0)[0]
    torch.testing.assert_close(contributions(rnn, readout, x, y, t)[-1], one_step, **TOL)


def test_norms_for_the_bar_chart():
    rnn, readout, x, y = make("elman-tanh")
    terms = contributions(rnn, readout, x, y, N - 1)
    norms = contribution_norms(rnn, readout, x, y, N - 1)
    assert norms.shape == (N,) and norms.dtype == np.float64
    np.testing.assert_allclose(norms, [torch.linalg.norm(m).item() for m in terms], rtol=1e-12)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(t=-1), r"t must be in \[0, 8\]"),
        (dict(t=N), r"t must be in \[0, 8\]"),
        (dict(t=1.5), r"t must be a whole number"),
        (dict(t=2, param="weight_hy"), r"param must be one of weight_ih_l0"),
    ],
)
def test_bad_input_names_the_setting(kw, match):
    rnn, readout, x, y = make("nn.GRU")
    with pytest.raises(ValueError, match=match):
        contributions(rnn, readout, x, y, **kw)


def test_one_sequence_only():
    rnn, readout, x, y = make("elman-tanh")
    with pytest.raises(ValueError, match="one sequence"):
        contributions(rnn, readout, x[:, None].expand(N, 2, I), y[:, None].expand(N, 2, O), 3)
