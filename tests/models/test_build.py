"""Building from settings (bptt_core.models.build): the whole (init x activation x cell) grid builds, runs
the engine and is reproducible by seed; stacks are built layer by layer; what the task cannot take is
refused."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core import ElmanRNN, ModelConfig, build_model, build_task, jacobian_log_norms
from bptt_core.config import ACTIVATIONS, CELLS, DIAGONAL_CELLS, INITS
from bptt_core.models.cells import NEW_CELLS

# -- the grid: every init x activation x cell builds, runs, and is reproducible by seed ------------

GRID = [
    dict(cell=cell, activation=act, init=init, spectral_radius=rho)
    for cell in CELLS
    for act in (ACTIVATIONS if cell == "rnn" else ("tanh",))
    for init, rho in itertools.product(INITS if cell != "lru" else ("orthogonal",), (0.0, 0.9))
    if not (rho == 0.9 and init in ("sparse",))  # sparse already rescales (to 0.95 by default)
    if not (rho and cell in DIAGONAL_CELLS)  # no recurrent matrix to rescale (refused, tested below)
]
CLASSES = {"rnn": ElmanRNN, "lstm": nn.LSTM, "gru": nn.GRU} | NEW_CELLS


def grid_id(g):
    return f"{g['cell']}-{g['activation']}-{g['init']}-rho{g['spectral_radius']}"


def flat_params(modules):
    return torch.cat([p.detach().flatten() for m in modules for p in m.parameters()])


@pytest.mark.parametrize("settings", GRID, ids=[grid_id(g) for g in GRID])
def test_every_init_activation_cell_builds_runs_and_is_reproducible(settings):
    cfg = ModelConfig(**settings, hidden_size=6, seq_len=10, seed=3, gain=1.2)
    rnn, readout = build_model(cfg)
    assert isinstance(rnn, CLASSES[cfg.cell])
    if cfg.cell == "rnn":
        assert rnn.nonlinearity == cfg.activation
    assert readout.in_features == 6
    assert all(torch.isfinite(p).all() for p in rnn.parameters())
    x = build_task(cfg).x[:, 0]  # (T, I)
    L = jacobian_log_norms(rnn, x)
    T = cfg.seq_len
    assert L.shape == (T, T) and L.dtype == np.float64
    low, up = L[np.tril_indices(T)], L[np.triu_indices(T, 1)]
    assert not np.isnan(low).any() and not np.isposinf(low).any()  # finite or -inf (an exact zero)
    assert np.isnan(up).all()
    # same seed: same weights and the same matrix, bit for bit
    rnn2, readout2 = build_model(cfg)
    assert torch.equal(flat_params([rnn, readout]), flat_params([rnn2, readout2]))
    np.testing.assert_array_equal(jacobian_log_norms(rnn2, build_task(cfg).x[:, 0]), L)
    # another seed: other weights
    other = dataclasses.replace(cfg, seed=4)
    assert not torch.equal(flat_params(build_model(other)), flat_params([rnn, readout]))
    if settings["spectral_radius"]:
        W = rnn.weight_hh_l0.detach().double()
        H = cfg.hidden_size
        for g in range(W.shape[0] // H):  # every gate block rescaled
            rho = torch.linalg.eigvals(W[g * H : (g + 1) * H]).abs().max().item()
            assert rho == pytest.approx(0.9, rel=1e-5)


@pytest.mark.parametrize("cell", DIAGONAL_CELLS)
def test_diagonal_cells_refuse_a_spectral_radius_and_take_the_scheme_on_their_inputs(cell):
    with pytest.raises(ValueError, match=f"spectral_radius must be 0 for the {cell} cell"):
        build_model(ModelConfig(cell=cell, spectral_radius=0.9, hidden_size=4))
    a, _ = build_model(ModelConfig(cell=cell, init="identity", hidden_size=4, seed=1))
    b, _ = build_model(ModelConfig(cell=cell, init="xavier_normal", hidden_size=4, seed=1))
    changed = {n for (n, p), q in zip(a.named_parameters(), b.parameters(), strict=True) if not torch.equal(p, q)}
    if cell == "lru":  # the ring initialisation whatever the scheme
        assert changed == set()
    else:
        assert changed and all(n.startswith(("weight_", "bias_")) for n in changed)
        assert all(
            p.abs().max() < 0.01 for n, p in a.named_parameters() if n.startswith("weight_")
        )  # identity: N(0, 1e-6)


def test_stacked_model_builds_every_layer_by_the_scheme():
    cfg = ModelConfig(cell="lstm", num_layers=3, init="orthogonal", gain=0.7, hidden_size=5, seed=2)
    rnn, _ = build_model(cfg)
    assert isinstance(rnn, nn.LSTM) and rnn.num_layers == 3
    for k in range(3):
        W = rnn.get_parameter(f"weight_hh_l{k}").detach().double()
        for g in range(4):
            torch.testing.assert_close(torch.linalg.svdvals(W[g * 5 : (g + 1) * 5]), torch.full((5,), 0.7).double())
    with pytest.raises(ValueError, match="num_layers must be 1 for the lru cell"):
        ModelConfig(cell="lru", num_layers=2)
    with pytest.raises(ValueError, match="stacked vanilla RNN.*tanh or relu"):
        ModelConfig(cell="rnn", activation="sigmoid", num_layers=2)


def test_build_model_refuses_an_input_size_the_task_cannot_take():
    with pytest.raises(ValueError, match="input_size must be 2 for the adding task"):
        build_model(ModelConfig(task="adding", input_size=3))
    rnn, readout = build_model(ModelConfig(task="gaussian", input_size=7, hidden_size=5))
    assert rnn.input_size == 7 and readout.out_features == 7
