"""Models, configs and the refusals: every setting a user can get wrong gets a ValueError naming it.

And the whole (init x activation x cell) grid builds, runs the engine, and is reproducible by seed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core import ElmanRNN, ModelConfig, build_model, build_task, jacobian_log_norms
from bptt_core.config import (
    ACTIVATIONS,
    CELLS,
    DIAGONAL_CELLS,
    INITS,
    MAX_HIDDEN,
    MAX_JACOBIAN_BYTES,
    check_jacobian_memory,
)
from bptt_core.models.cells import NEW_CELLS
from bptt_core.models.recurrent import ACTIVATION_GAMMA, cell_view, make_rnn

# -- ModelConfig -----------------------------------------------------------------------------------

BAD_CONFIGS = [
    # (setting, value, a word the message must contain besides the setting's name)
    ("hidden_size", 0, "[1, 512]"),
    ("hidden_size", -3, "[1, 512]"),
    ("hidden_size", 10**6, "[1, 512]"),
    ("hidden_size", 2.5, "whole number"),
    ("hidden_size", True, "whole number"),
    ("hidden_size", "64", "whole number"),
    ("seq_len", 0, "[1, 2000]"),
    ("seq_len", 10**5, "[1, 2000]"),
    ("gain", -1.0, "(0.0, 100.0]"),
    ("gain", 0.0, "(0.0, 100.0]"),
    ("gain", float("nan"), "(0.0, 100.0]"),
    ("gain", float("inf"), "(0.0, 100.0]"),
    ("gain", "big", "number"),
    ("spectral_radius", -0.5, "[0.0, 100.0]"),
    ("activation", "swish", "tanh, relu, sigmoid, linear"),
    ("init", "foo", "orthogonal"),
    ("cell", "xyz", "rnn, lstm, gru"),
    ("task", "parity", "adding"),
    ("seed", -1, "[0, "),
    ("batch_size", 0, "[1, 1024]"),
    ("input_size", -1, "[0, 256]"),
]


@pytest.mark.parametrize("setting,value,allowed", BAD_CONFIGS, ids=[f"{s}={v!r}" for s, v, _ in BAD_CONFIGS])
def test_bad_config_names_the_setting_and_range(setting, value, allowed):
    with pytest.raises(ValueError) as e:
        ModelConfig(**{setting: value})
    assert setting in str(e.value)
    assert allowed in str(e.value)


def test_config_normalises_numbers_and_round_trips():
    cfg = ModelConfig(hidden_size=np.int64(8), seq_len=12.0, gain=2, spectral_radius=np.float32(0.5))
    assert type(cfg.hidden_size) is int and type(cfg.seq_len) is int and type(cfg.gain) is float
    assert cfg == ModelConfig(hidden_size=8, seq_len=12, gain=2.0, spectral_radius=0.5)
    assert hash(cfg) == hash(ModelConfig(hidden_size=8, seq_len=12, gain=2.0, spectral_radius=0.5))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown settings.*colour"):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 3


def test_jacobian_memory_limit():
    check_jacobian_memory("rnn", MAX_HIDDEN, 200)  # 24 * 200 * 512^2 + 128 MiB = 1.39 GB: allowed
    with pytest.raises(ValueError, match="hidden_size.*seq_len"):
        check_jacobian_memory("rnn", MAX_HIDDEN, 2000)
    with pytest.raises(ValueError, match="lstm"):
        check_jacobian_memory("lstm", MAX_HIDDEN, 200)  # the (h, c) state doubles S: 4x the bytes
    # the limit the message quotes is the constant the check uses
    with pytest.raises(ValueError, match=f"{MAX_JACOBIAN_BYTES / 1e9:.1f} GB"):
        check_jacobian_memory("gru", MAX_HIDDEN, 2000)


def test_jacobian_log_norms_refuses_over_the_memory_limit_before_allocating():
    rnn = nn.RNN(1, MAX_HIDDEN)
    x = torch.zeros(2000, 1)  # 24 * 2000 * 512^2 bytes ~ 13 GB of buffers
    with pytest.raises(ValueError, match="hidden_size.*seq_len"):
        jacobian_log_norms(rnn, x)


# -- bad input to the engine ----------------------------------------------------------------------


def small_rnn(cell="rnn", I=3, H=4):
    torch.manual_seed(0)
    return make_rnn(cell, I, H)


BAD_CALLS = [
    # (id, model factory, x, kwargs, words the message must contain)
    ("x-1d", small_rnn, torch.zeros(5), {}, "x must have shape"),
    ("x-wrong-width", small_rnn, torch.zeros(5, 2), {}, "(T, 3)"),
    ("x-batch-of-2", small_rnn, torch.zeros(5, 2, 3), {}, "x must have shape"),
    ("x-empty", small_rnn, torch.zeros(0, 3), {}, "T >= 1"),
    ("x-nan", small_rnn, torch.tensor([[0.0, float("nan"), 0.0]] * 4), {}, "finite"),
    ("x-inf", small_rnn, torch.tensor([[0.0, float("inf"), 0.0]] * 4), {}, "finite"),
    ("norm-nuc", small_rnn, torch.zeros(5, 3), {"norm": "nuc"}, "norm must be 'fro' or 2"),
    ("norm-1", small_rnn, torch.zeros(5, 3), {"norm": 1}, "norm must be 'fro' or 2"),
    ("norm-str-two", small_rnn, torch.zeros(5, 3), {"norm": "two"}, "norm must be 'fro' or 2"),
    ("block-c-on-rnn", small_rnn, torch.zeros(5, 3), {"block": "c"}, "block='c' needs an LSTM"),
    ("block-c-on-gru", lambda: small_rnn("gru"), torch.zeros(5, 3), {"block": "c"}, "block='c' needs an LSTM"),
    ("block-x", lambda: small_rnn("lstm"), torch.zeros(5, 3), {"block": "x"}, "block must be 'h' or 'c'"),
    ("h0-wrong-size", small_rnn, torch.zeros(5, 3), {"h0": torch.zeros(7)}, "h0 must have 4 entries"),
    ("layer-out-of-range", lambda: nn.RNN(3, 4, num_layers=2), torch.zeros(5, 3), {"layer": 2}, "layer must be"),
    ("layer-not-int", lambda: nn.LSTM(3, 4, num_layers=2), torch.zeros(5, 3), {"layer": 0.5}, "layer must be"),
    ("layer-on-single", small_rnn, torch.zeros(5, 3), {"layer": 1}, "layer must be a whole number in [-1, 0]"),
    ("bidirectional", lambda: nn.GRU(3, 4, bidirectional=True), torch.zeros(5, 3), {}, "bidirectional"),
    (
        "stacked-h0",
        lambda: nn.GRU(3, 4, num_layers=2),
        torch.zeros(5, 3),
        {"h0": torch.zeros(5)},
        "num_layers * hidden",
    ),
    ("lru-h0-complex-size", lambda: small_rnn("lru"), torch.zeros(5, 3), {"h0": torch.zeros(4)}, "h0 must have 8"),
    ("diag-method", small_rnn, torch.zeros(5, 3), {"method": "diagonal"}, "needs a diagonal cell"),
    ("lstm-proj", lambda: nn.LSTM(3, 4, proj_size=2), torch.zeros(5, 3), {}, "proj_size must be 0"),
    ("not-recurrent", lambda: nn.Linear(3, 4), torch.zeros(5, 3), {}, "must be a torch.nn.RNN, LSTM, GRU"),
]


@pytest.mark.parametrize("name,factory,x,kw,words", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_engine_refuses_bad_input_with_a_named_setting(name, factory, x, kw, words):
    with pytest.raises(ValueError) as e:
        jacobian_log_norms(factory(), x, **kw)
    assert words in str(e.value)


def test_cell_view_refuses_bidirectional_and_says_why():
    for cls in (nn.RNN, nn.LSTM, nn.GRU):
        for layers in (1, 2):
            with pytest.raises(ValueError, match="bidirectional must be False.*reversed time"):
                cell_view(cls(2, 3, num_layers=layers, bidirectional=True))


def test_cell_view_takes_stacked_and_batch_first_modules():
    from bptt_core.models.recurrent import StackedView

    v = cell_view(nn.LSTM(2, 3, num_layers=3, batch_first=True))
    assert isinstance(v, StackedView) and v.num_layers == 3 and v.state_size == 3 * 6
    assert [v.layer_slice(k) for k in range(3)] == [slice(0, 6), slice(6, 12), slice(12, 18)]
    assert cell_view(nn.GRU(2, 3, batch_first=True)).state_size == 3


def test_elman_rejects_unknown_activation_and_make_rnn_unknown_cell():
    with pytest.raises(ValueError, match="activation must be one of"):
        ElmanRNN(2, 3, "swish")
    with pytest.raises(ValueError, match="cell must be one of"):
        make_rnn("xyz", 2, 3)


# -- models ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_elman_rnn_equals_torch_rnn_with_the_same_weights(act):
    torch.manual_seed(0)
    ref = nn.RNN(3, 5, nonlinearity=act).double()
    mine = ElmanRNN(3, 5, act).double()
    mine.load_state_dict(ref.state_dict())  # same parameter names: state_dicts interchangeable
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 5, dtype=torch.float64)
    out_r, hn_r = ref(x, h0)
    out_m, hn_m = mine(x, h0)
    torch.testing.assert_close(out_m, out_r)
    torch.testing.assert_close(hn_m, hn_r)
    out_u, _ = mine(x[:, 0])  # unbatched (T, I) call
    torch.testing.assert_close(out_u, ref(x[:, 0])[0])


@pytest.mark.parametrize("act,phi", [("sigmoid", torch.sigmoid), ("linear", lambda a: a)])
def test_elman_extra_activations(act, phi):
    torch.manual_seed(0)
    m = ElmanRNN(2, 3, act).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    h = torch.zeros(3, dtype=torch.float64)
    for t in range(4):
        h = phi(m.weight_ih_l0 @ x[t] + m.bias_ih_l0 + m.weight_hh_l0 @ h + m.bias_hh_l0)
    torch.testing.assert_close(m(x)[0][-1], h)


def test_activation_gamma_is_the_sup_of_the_derivative():
    from bptt_core.models.recurrent import activation_derivative

    a = torch.linspace(-20, 20, 40001, dtype=torch.float64)
    for act in ACTIVATIONS:
        assert activation_derivative(act, a).max().item() == pytest.approx(ACTIVATION_GAMMA[act], rel=1e-6)


def test_tanh_derivative_keeps_tiny_slopes_of_saturated_units():
    from bptt_core.models.recurrent import activation_derivative

    d = activation_derivative("tanh", torch.tensor([25.0, -40.0], dtype=torch.float64))
    assert (d > 0).all()  # 1 - tanh^2 would be exactly 0 here
    np.testing.assert_allclose(torch.log(d).numpy(), [math.log(4) - 50, math.log(4) - 80], rtol=1e-10)


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
