"""Click to unroll: the chain J_t ... J_{s+1} behind one cell of the gradient-flow matrix, for every
cell type: it ends at the heatmap's value, the factors' norms bound it, the slopes are the ones in
the Jacobians, and the non-normality numbers are the matrix powers' own."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt_core.flow.jacobians import jacobian_log_norms, step_jacobians
from bptt_core.flow.unroll import MAX_SLOPE, SATURATION_THRESHOLD, unroll
from bptt_core.learning.truncation import attach_contribution, contributions
from bptt_core.models.recurrent import ElmanRNN
from bptt_core.report.panels import unroll_panels
from tests.helpers.unroll import CELLS, H, I, T, _model, _x

NORMS = ["fro", 2]
# (t, s), 0-indexed: the whole sequence, a middle stretch, one factor, no factor (t = s)
CELL_PAIRS = [(6, 0), (5, 2), (3, 2), (4, 4)]


def _same_log(a: float, b: float, tol: float = 1e-9) -> bool:
    return (a == b) or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(CELLS))
def test_running_product_ends_at_the_heatmap_value_and_factor_norms_bound_it(name, norm):
    rnn, x = _model(name), _x()
    L = jacobian_log_norms(rnn, x, norm=norm)  # a float64 model: the heatmap in float64
    for t, s in CELL_PAIRS:
        u = unroll(rnn, x, t, s, norm=norm)
        assert u.factor_steps.tolist() == list(range(s + 1, t + 1))
        assert len(u.running_log10) == t - s + 1 and len(u.bound_log10) == len(u.factor_log10_norms) == t - s
        assert _same_log(u.value, L[t, s]), (t, s, u.value, L[t, s])
        assert _same_log(u.running_log10[0], L[s, s])  # nothing multiplied yet: the identity's norm
        for k in range(1, t - s + 1):  # every partial product is a cell of the heatmap too
            assert _same_log(u.running_log10[k], L[s + k, s])
            assert u.running_log10[k] <= u.bound_log10[k - 1] + 1e-12  # submultiplicativity
        if t > s:
            assert u.value <= float(np.sum(u.factor_log10_norms)) + 1e-12


@pytest.mark.parametrize("name", ["elman-tanh", "nn.LSTM", "nn.GRU"])
def test_float32_model_matches_its_float32_heatmap_to_float32_accuracy(name):
    """A float32 model's heatmap is computed in float32; the unrolled chain is float64 (exact)."""
    rnn = CELLS[name]()
    x = _x().float()
    L32 = jacobian_log_norms(rnn, x)
    L64 = jacobian_log_norms(rnn, x, dtype=torch.float64)
    u = unroll(rnn, x, 6, 1)
    assert abs(u.value - L64[6, 1]) <= 1e-9
    assert abs(u.value - L32[6, 1]) <= 1e-5


def test_lstm_c_block_ends_at_the_c_heatmap():
    rnn, x = _model("nn.LSTM"), _x()
    L = jacobian_log_norms(rnn, x, block="c")
    u = unroll(rnn, x, 6, 1, block="c")
    assert abs(u.value - L[6, 1]) <= 1e-9
    assert u.factor_singular_values.shape == (5, 2 * H)  # the factors are full (h, c) Jacobians


def test_tiny_and_huge_values_are_exact_in_log_space():
    """Far below float64's range (1e-400) and far above it: the running product never under/overflows."""
    for gain, sign in ((0.01, -1), (30.0, 1)):
        rnn = ElmanRNN(I, H, "linear").double()
        with torch.no_grad():
            rnn.weight_hh_l0.copy_(gain * torch.eye(H, dtype=torch.float64))
        x = _x(length=220)
        u = unroll(rnn, x, 219, 0)
        expected = 219 * math.log10(gain) + 0.5 * math.log10(H)  # ||(gI)^219||_F = g^219 sqrt(H)
        assert abs(u.value - expected) < 1e-9 and sign * u.value > 300
        L = jacobian_log_norms(rnn, x)
        assert abs(u.value - L[219, 0]) <= 1e-9


def test_relu_units_off_and_an_exactly_zero_chain():
    rnn = ElmanRNN(I, H, "relu").double()
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.bias_ih_l0.fill_(-100.0)  # every pre-activation far below zero: every unit off
        rnn.bias_hh_l0.zero_()
    x = _x()
    u = unroll(rnn, x, 5, 1)
    assert u.saturated["phi'"].all() and u.saturated_counts["phi'"].tolist() == [H] * 4
    assert u.running_log10[0] == 0.5 * math.log10(H) and np.isneginf(u.running_log10[1:]).all()
    assert np.isneginf(jacobian_log_norms(rnn, x)[5, 1])


@pytest.mark.parametrize("name", ["elman-tanh", "elman-sigmoid", "elman-relu", "nn.RNN-tanh"])
def test_vanilla_slopes_are_the_diagonal_of_each_factor(name):
    """J_i = diag(phi'(a_i)) W_hh: the reported slopes rebuild every factor; saturation is the stated threshold."""
    rnn, x = _model(name), _x()
    with torch.no_grad():
        rnn.bias_ih_l0[0] = 30.0  # unit 0 deep in saturation (tanh, sigmoid) at every step
    u = unroll(rnn, x, 6, 0)
    d = u.derivatives["phi'"]  # (6, H)
    J = step_jacobians(rnn, x)[1:7]  # J_1 .. J_6
    W = rnn.weight_hh_l0.detach()
    torch.testing.assert_close(torch.from_numpy(d)[:, :, None] * W, J, rtol=0, atol=1e-15)
    fn = u.functions["phi'"]
    np.testing.assert_array_equal(u.saturated["phi'"], d < SATURATION_THRESHOLD * MAX_SLOPE[fn])
    assert u.note == ""
    if name != "elman-relu":
        assert u.saturated["phi'"][:, 0].all() and not u.saturated["phi'"].all()


@pytest.mark.parametrize("name, gates", [("nn.LSTM", {"i", "f", "o", "g", "tanh(c)"}), ("nn.GRU", {"r", "z", "n"})])
def test_gated_cells_report_each_gates_slope_and_say_what_saturation_means(name, gates):
    rnn, x = _model(name), _x()
    u = unroll(rnn, x, 6, 2)
    assert set(u.derivatives) == gates and u.note
    for k, d in u.derivatives.items():
        assert d.shape == (4, H) and (d >= 0).all() and (d <= MAX_SLOPE[u.functions[k]] + 1e-15).all()
    # the slopes are autograd's: sigmoid'(a) of the GRU's update gate at the first factor step
    if name == "nn.GRU":
        xs = x.detach()
        h = torch.zeros(1, H, dtype=torch.float64)
        for i in range(3):  # the state before step 3 (0-indexed), the first factor J_3
            _, h = rnn(xs[i : i + 1], h)
        a_z = (
            (
                xs[3] @ rnn.weight_ih_l0[H : 2 * H].T
                + rnn.bias_ih_l0[H : 2 * H]
                + h[0] @ rnn.weight_hh_l0[H : 2 * H].T
                + rnn.bias_hh_l0[H : 2 * H]
            )
            .detach()
            .requires_grad_()
        )
        (g,) = torch.autograd.grad(torch.sigmoid(a_z).sum(), a_z)
        np.testing.assert_allclose(u.derivatives["z"][0], g.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", list(CELLS))
def test_contribution_term_through_s_is_the_per_step_term(name):
    rnn = CELLS[name]()
    readout = torch.nn.Linear(H, 2)
    x = _x().float()
    y = torch.randn(T, 2, generator=torch.Generator().manual_seed(5))
    u = attach_contribution(unroll(rnn, x, 5, 2), rnn, readout, x, y)
    terms = contributions(rnn, readout, x, y, 5)
    np.testing.assert_array_equal(u.contribution, terms[2].double().numpy())
    np.testing.assert_allclose(u.contribution_norms, terms.reshape(6, -1).norm(dim=1).double().numpy())


def test_non_normal_matrix_grows_transiently_although_rho_is_below_one():
    """W = 0.9 I + 3 N (N nilpotent): rho = 0.9, yet ||W^k|| climbs far above 1 before it decays."""
    n = 4
    W = 0.9 * torch.eye(n, dtype=torch.float64) + 3.0 * torch.diag(torch.ones(n - 1, dtype=torch.float64), 1)
    rnn = ElmanRNN(1, n, "linear").double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(W)
    u = unroll(rnn, torch.zeros(40, 1, dtype=torch.float64), 39, 0)
    ref = [math.log10(np.linalg.norm(np.linalg.matrix_power(W.numpy(), k), 2)) for k in range(40)]
    np.testing.assert_allclose(u.power_log10, ref, rtol=0, atol=1e-10)
    assert u.rho == pytest.approx(0.9) and u.power_log10.max() > 2  # transient growth beyond 100x
    assert (u.transient_gap >= -1e-12).all() and u.transient_gap.max() > 2
    assert u.departure > 0.9  # far from normal


def test_normal_matrix_has_no_gap():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(H, H))
    Q, _ = np.linalg.qr(A)
    W = torch.from_numpy(Q @ np.diag([0.9, -0.5, 0.3, 0.7]) @ Q.T)  # symmetric: normal
    rnn = ElmanRNN(I, H, "tanh").double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(W)
    u = unroll(rnn, _x(), 6, 0)
    np.testing.assert_allclose(u.transient_gap, 0.0, atol=1e-12)
    assert u.departure < 1e-7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(t=3, s=4), "s must not exceed t"),
        (dict(t=T, s=0), r"t must be in \[0, 6\]"),
        (dict(t=3, s=-1), r"s must be in \[0, 6\]"),
        (dict(t=3, s=1, norm="nuc"), "norm must be"),
        (dict(t=3, s=1, block="c"), "block='c' needs an LSTM"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        unroll(ElmanRNN(I, H), _x().float(), **kwargs)


@pytest.mark.parametrize("name", ["elman-relu", "nn.LSTM"])
def test_unroll_table_has_one_row_per_factor(name):
    rnn, x = _model(name), _x()
    u = unroll(rnn, x, 6, 2)
    t = u.table()
    assert t["factor_step"].tolist() == [4, 5, 6, 7]  # J_4 .. J_7 of the clicked cell (t, s) = (7, 3), 1-indexed
    np.testing.assert_array_equal(t["running_log10"], u.running_log10[1:])
    np.testing.assert_array_equal(t["bound_log10"], u.bound_log10)
    np.testing.assert_array_equal(t["sigma_max"], u.factor_singular_values[:, 0])
    for k in u.derivatives:
        np.testing.assert_array_equal(t[f"saturated_{k}"], u.saturated_counts[k])
    assert unroll(rnn, x, 3, 3).table().empty  # no factor: an empty table, not an error


# Every cell type the dashboard offers (bptt_core.config.CELLS): the page's heatmap is report.flow_matrix_of
# (float64 chain), and the unroll of any clicked cell must end at exactly that value (within 1e-9 in log10).
PAGE_MODELS = [
    *(dict(cell="rnn", activation=a) for a in ("tanh", "relu", "sigmoid", "linear")),
    dict(cell="rnn", activation="tanh", gain=1.6),  # growing: values above 0
    dict(cell="lstm"),
    dict(cell="lstm", forget_bias=1.0),
    dict(cell="gru"),
]
PAGE_CELLS = [(11, 0), (11, 10), (8, 3), (5, 5), (1, 0)]  # 0-indexed (t, s)


@pytest.mark.parametrize("norm", ["fro", 2])
@pytest.mark.parametrize("kw", PAGE_MODELS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_unroll_ends_at_the_dashboards_heatmap_value_for_every_cell_type(kw, norm):
    from bptt_core.analyses.numbers import flow_matrix_of, model_and_sequence
    from bptt_core.config import ModelConfig

    cfg = ModelConfig(hidden_size=6, seq_len=12, **kw)
    blocks = ("h", "c") if cfg.cell == "lstm" else ("h",)
    rnn, _, x, _, _ = model_and_sequence(cfg)
    assert next(rnn.parameters()).dtype == torch.float32  # the page's model is float32; its heatmap is not
    for block in blocks:
        L = flow_matrix_of(cfg, norm, block)  # what the page's heatmap draws
        for t, s in PAGE_CELLS:
            u = unroll(rnn, x, t, s, block=block, norm=norm)
            assert abs(u.running_log10[-1] - L[t, s]) <= 1e-9, (kw, block, t, s, u.running_log10[-1], L[t, s])


OTHER_MODELS = [*(dict(cell=c) for c in ("lru", "mingru", "minlstm", "ssm")),
                dict(cell="rnn", num_layers=2), dict(cell="lstm", num_layers=2), dict(cell="gru", num_layers=3)]  # fmt: skip


@pytest.mark.parametrize("norm", ["fro", 2])
@pytest.mark.parametrize("kw", OTHER_MODELS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_diagonal_cells_and_stacks_unroll_to_the_heatmap_value_too(kw, norm):
    """The diagonal cells (their heatmap from the diagonal fast path) and stacks (the top layer's block of
    the full-state product) unroll to the page's value as well, and the factors' norms bound the chain."""
    from bptt_core.analyses.numbers import contributions_of, flow_matrix_of, model_and_sequence
    from bptt_core.config import ModelConfig

    cfg = ModelConfig(hidden_size=5, seq_len=12, **kw)
    rnn, readout, x, y, _ = model_and_sequence(cfg)
    L = flow_matrix_of(cfg, norm, "h")
    for t, s in PAGE_CELLS:
        u = unroll(rnn, x, t, s, norm=norm)
        assert abs(u.value - L[t, s]) <= 1e-9, (kw, t, s, u.value, L[t, s])
        assert (u.running_log10[1:] <= u.bound_log10 + 1e-9).all()
        assert all(v.shape == (t - s, cfg.hidden_size) for v in u.derivatives.values())
    # the term through s is the page's per-step term (its contributions panel), for these models too
    u = attach_contribution(unroll(rnn, x, 11, 4), rnn, readout, x, y)
    np.testing.assert_allclose(u.contribution_norms, contributions_of(cfg, 11), rtol=1e-6)


@pytest.mark.parametrize("cell", ["lru", "mingru", "minlstm", "ssm"])
def test_a_diagonal_cells_units_are_its_decays_and_shut_ones_are_counted(cell):
    """J_t = diag(a_t): the reported |a_t| are the factors' singular values, and a unit counts as shut
    where |a_t| < the threshold. Only the LRU has a fixed recurrent matrix (diag(lambda), normal)."""
    from bptt_core.analyses.numbers import model_and_sequence
    from bptt_core.config import ModelConfig
    from bptt_core.flow.unroll import SATURATION_THRESHOLD
    from bptt_core.models.recurrent import cell_view

    rnn, _, x, _, _ = model_and_sequence(ModelConfig(cell=cell, hidden_size=4, seq_len=10))
    u = unroll(rnn, x, 8, 2)
    (name,) = u.derivatives
    a = cell_view(rnn).diagonal(x.double())[3:9].abs().numpy()  # the factor steps 3 .. 8
    np.testing.assert_allclose(u.derivatives[name], a, rtol=1e-12)
    np.testing.assert_array_equal(u.saturated[name], a < SATURATION_THRESHOLD)
    if cell == "lru":  # |lambda| twice in the real form
        np.testing.assert_allclose(np.sort(u.factor_singular_values, 1), np.sort(np.concatenate([a, a], 1), 1))
        assert u.matrix and u.departure < 1e-12 and np.abs(u.transient_gap).max() < 1e-9  # normal: no gap
    else:
        np.testing.assert_allclose(np.sort(u.factor_singular_values, 1), np.sort(a, 1), rtol=1e-12)
        assert len(u.power_log10) == 0 and not u.matrix  # a_t depends on the input: no fixed W
        assert "gf_unroll_nonnormal" not in {p.key for p in unroll_panels(u)}


def test_a_stacks_slopes_are_every_layers():
    from bptt_core.analyses.numbers import model_and_sequence
    from bptt_core.config import ModelConfig

    rnn, _, x, _, _ = model_and_sequence(ModelConfig(cell="gru", num_layers=3, hidden_size=4, seq_len=9))
    u = unroll(rnn, x, 7, 1)
    assert set(u.derivatives) == {f"L{l} {g}" for l in range(3) for g in ("r", "z", "n")}
    assert u.matrix.endswith("of the top layer")
