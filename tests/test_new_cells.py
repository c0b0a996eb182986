"""Stacked / batch-first torch modules and the diagonal cells against autograd in float64.

As in test_jacobians, the references never use the library's views: they step the module itself
(its own forward, one step at a time, from a given state) and differentiate that with
``torch.autograd.functional.jacobian``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cells import diagonal_cells, jacobian_through, stacked_cells
from torch import nn

from bptt_core import LRU, MinGRU, MinLSTM, SelectiveSSM, diagonal_log_norms, jacobian_log_norms, layer_reach
from bptt_core.flow.jacobians import step_jacobians
from bptt_core.models.recurrent import cell_view

I, H, T = 2, 3, 6
STACKED = stacked_cells(I, H)
DIAGONAL = diagonal_cells(I, H)
NORMS = ["fro", 2]


def make(factory, seed=0, scale=1.5):
    torch.manual_seed(seed)
    m = factory()
    if isinstance(m, nn.RNNBase):  # weights large enough that the nonlinearities show
        with torch.no_grad():
            for p in m.parameters():
                p.uniform_(-scale / math.sqrt(H), scale / math.sqrt(H))
    return m.double()


def layer_state_size(m):
    return 2 * H if isinstance(m, nn.LSTM) else H


def state_size(m):
    if isinstance(m, nn.RNNBase):
        return m.num_layers * layer_state_size(m)
    return m.state_size


def module_step(m, x_t, state):
    """One step of the module itself: x_t (I,), state (S,) -> (S,), in the library's state layout
    (torch modules: layer by layer, each (h, c) for an LSTM; diagonal cells: their real state)."""
    if not isinstance(m, nn.RNNBase):
        _, h_n = m(x_t[None], state[None])  # (1, S)
        return h_n.reshape(-1)
    L, S1 = m.num_layers, layer_state_size(m)
    per = state.reshape(L, S1)
    xin = x_t.reshape(1, 1, I)  # (T=1, B=1, I) and (B=1, T=1, I) are the same tensor
    if isinstance(m, nn.LSTM):
        _, (h, c) = m(xin, (per[:, :H].reshape(L, 1, H).contiguous(), per[:, H:].reshape(L, 1, H).contiguous()))
        return torch.cat([h.reshape(L, H), c.reshape(L, H)], 1).reshape(-1)
    _, h = m(xin, per.reshape(L, 1, H).contiguous())
    return h.reshape(-1)


def module_states(m, x):
    state = torch.zeros(state_size(m), dtype=torch.float64)
    out = [state]
    with torch.no_grad():
        for t in range(x.shape[0]):
            state = module_step(m, x[t], state)
            out.append(state)
    return torch.stack(out)


def autograd_block(m, x, states, t, s, rows, cols):
    return jacobian_through(module_step, m, x, states, t, s, rows, cols)


def h_block(m, layer):
    if not isinstance(m, nn.RNNBase):
        return slice(0, m.state_size)
    start = (layer % m.num_layers) * layer_state_size(m)
    return slice(start, start + H)


def reference_L(m, x, norm, layer=-1):
    states = module_states(m, x)
    sl = h_block(m, layer)
    L = np.full((T, T), np.nan)
    for t in range(T):
        for s in range(t + 1):
            n = torch.linalg.matrix_norm(autograd_block(m, x, states, t, s, sl, sl), ord=norm).item()
            L[t, s] = math.log10(n) if n > 0 else -math.inf
    return L


def sequence(seed=1):
    return torch.randn(T, I, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


ALL = {**STACKED, **DIAGONAL}


# -- step Jacobians and states ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL))
def test_states_and_full_state_step_jacobians_match_the_module_under_autograd(name):
    m, x = make(ALL[name]), sequence()
    states = module_states(m, x)
    view = cell_view(m)
    torch.testing.assert_close(view.run(x), states, rtol=1e-12, atol=1e-13)
    J = step_jacobians(m, x)  # (T, S, S)
    ref = torch.stack(
        [torch.autograd.functional.jacobian(lambda s, t=t: module_step(m, x[t], s), states[t]) for t in range(T)]
    )
    torch.testing.assert_close(J, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(ALL))
def test_jacobian_log_norms_top_layer_matches_autograd(name, norm):
    m, x = make(ALL[name]), sequence(2)
    L = jacobian_log_norms(m, x, norm=norm)
    ref = reference_L(m, x, norm)
    np.testing.assert_array_equal(np.isnan(L), np.isnan(ref))
    np.testing.assert_allclose(L[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", [n for n in STACKED if "layer" in n])
def test_layer_picks_each_layers_own_block(name, norm):
    m, x = make(STACKED[name]), sequence(3)
    layers = [jacobian_log_norms(m, x, norm=norm, layer=k) for k in range(m.num_layers)]
    for k in range(m.num_layers):
        ref = reference_L(m, x, norm, layer=k)
        np.testing.assert_allclose(layers[k][~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(jacobian_log_norms(m, x, norm=norm, layer=-1), layers[-1])
    assert not np.allclose(np.nan_to_num(layers[0]), np.nan_to_num(layers[-1]))  # the layers do differ


def test_batch_first_changes_nothing_but_the_call():
    torch.manual_seed(0)
    a = nn.LSTM(I, H, num_layers=2).double()
    b = nn.LSTM(I, H, num_layers=2, batch_first=True).double()
    b.load_state_dict(a.state_dict())
    x = sequence(4)
    np.testing.assert_array_equal(jacobian_log_norms(a, x), jacobian_log_norms(b, x))
    np.testing.assert_array_equal(
        jacobian_log_norms(a, x, block="c", layer=0), jacobian_log_norms(b, x, block="c", layer=0)
    )


def test_stacked_h0_in_torchs_layout_or_the_full_state():
    m, x = make(STACKED["nn.GRU-3layer"]), sequence(5)
    h0 = torch.randn(3, 1, H, dtype=torch.float64)
    L = jacobian_log_norms(m, x, h0=h0)
    L_flat = jacobian_log_norms(m, x, h0=h0.reshape(-1))
    np.testing.assert_array_equal(L, L_flat)
    assert not np.allclose(np.nan_to_num(L), np.nan_to_num(jacobian_log_norms(m, x)))
    out, _ = m(x[:, None], h0)
    torch.testing.assert_close(cell_view(m).run(x, h0)[1:, 2 * H :], out[:, 0])


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ["nn.LSTM-2layer", "nn.GRU-3layer", "nn.RNN-2layer"])
def test_layer_reach_matches_autograd(name, norm):
    m, x = make(STACKED[name]), sequence(6)
    t = T - 2
    R = layer_reach(m, x, norm=norm, t=t)
    states = module_states(m, x)
    top = h_block(m, -1)
    assert R.shape == (m.num_layers, T) and np.isnan(R[:, t + 1 :]).all()
    for k in range(m.num_layers):
        for s in range(t + 1):
            n = torch.linalg.matrix_norm(autograd_block(m, x, states, t, s, top, h_block(m, k)), ord=norm).item()
            expected = math.log10(n) if n > 0 else -math.inf
            assert R[k, s] == pytest.approx(expected, abs=1e-9), (k, s)


# -- the diagonal cells ------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(DIAGONAL))
def test_diagonal_fast_path_equals_the_dense_chain_and_the_split(name, norm):
    m = make(DIAGONAL[name])
    x = torch.randn(40, I, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 3
    fast = jacobian_log_norms(m, x, norm=norm)
    for method in ("chain", "split") if norm == "fro" else ("chain",):
        dense = jacobian_log_norms(m, x, norm=norm, method=method)
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(dense))
        np.testing.assert_allclose(fast[~np.isnan(fast)], dense[~np.isnan(dense)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("norm", NORMS)
def test_lru_against_its_closed_form_whatever_the_input(norm):
    m = LRU(I, 4, r_min=0.5, r_max=0.99).double()
    lam = m.eigenvalues().detach()  # (4,)
    matrices = []
    for seed in (0, 1):
        x = torch.randn(30, I, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * (1 + 9 * seed)
        L = jacobian_log_norms(m, x, norm=norm)
        for t, s in [(1, 0), (29, 0), (17, 5), (29, 28)]:
            P = torch.diag(lam ** (t - s))  # complex (4, 4): d h_t / d h_s
            real = torch.cat([torch.cat([P.real, -P.imag], 1), torch.cat([P.imag, P.real], 1)])  # (Re h, Im h)
            assert L[t, s] == pytest.approx(math.log10(torch.linalg.matrix_norm(real, ord=norm).item()), abs=1e-12)
        matrices.append(L)
    np.testing.assert_array_equal(*matrices)  # input-independent: x ten times larger, same matrix


def test_lru_ring_initialisation_and_parameters():
    torch.manual_seed(0)
    m = LRU(3, 500, r_min=0.9, r_max=0.999, max_phase=math.pi / 10)
    assert {n for n, _ in m.named_parameters()} == {
        "nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D"
    }  # fmt: skip
    lam = m.double().eigenvalues().detach()
    r = lam.abs()
    assert 0.9 <= r.min() and r.max() <= 0.999
    assert 0 <= lam.angle().min() and lam.angle().max() <= math.pi / 10 + 1e-6
    torch.testing.assert_close(torch.exp(m.gamma_log.detach().double()), torch.sqrt(1 - r**2), rtol=1e-5, atol=1e-7)
    # |lambda|^2 uniform on [r_min^2, r_max^2]: its mean is the midpoint (500 draws: 4 standard errors)
    assert (r**2).mean().item() == pytest.approx((0.81 + 0.998001) / 2, abs=4 * (0.998001 - 0.81) / math.sqrt(12 * 500))
    for bad, words in [(dict(r_min=0.5, r_max=0.5), "r_min must be below"), (dict(r_max=1.5), "r_max must be in")]:
        with pytest.raises(ValueError, match=words):
            LRU(3, 4, **bad)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_parallel_scan_equals_the_sequential_form(cls):
    torch.manual_seed(3)
    seq = cls(I, 5).double()
    par = cls(I, 5, scan="parallel").double()
    par.load_state_dict(seq.state_dict())
    x = torch.randn(200, 4, I, dtype=torch.float64) * 2
    h0 = torch.randn(1, 4, 5, dtype=torch.float64)
    for a, b in zip(seq(x, h0), par(x, h0), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="scan must be one of sequential, parallel"):
        cls(I, 5, scan="tree")


@pytest.mark.parametrize("name", list(DIAGONAL))
def test_calling_convention_of_nn_gru(name):
    m = make(DIAGONAL[name])
    S = m.state_size
    x = torch.randn(7, 4, I, dtype=torch.float64)
    out, h_n = m(x)
    assert out.shape == (7, 4, H) and h_n.shape == (1, 4, S)
    out1, h1 = m(x[:, 2])  # unbatched: (T, I) -> (T, H), (1, S)
    assert out1.shape == (7, H) and h1.shape == (1, S)
    torch.testing.assert_close(out1, out[:, 2])
    # running in two halves with the state handed over equals one run (h0 / h_n in the real form)
    o_a, h_a = m(x[:3])
    o_b, h_b = m(x[3:], h_a)
    torch.testing.assert_close(torch.cat([o_a, o_b]), out)
    torch.testing.assert_close(h_b, h_n)
    with pytest.raises(ValueError, match="h0 must have shape"):
        m(x, torch.zeros(1, 4, S + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.zeros(7, 4, I + 1))


def test_selective_ssm_jacobian_depends_on_the_input_through_delta():
    torch.manual_seed(0)
    m = SelectiveSSM(I, 4).double()
    x = torch.randn(5, I, dtype=torch.float64)
    J = step_jacobians(m, x)  # (5, 4, 4)
    delta = torch.nn.functional.softplus(x @ m.weight_delta.T + m.bias_delta)
    torch.testing.assert_close(J, torch.diag_embed(torch.exp(-delta * torch.exp(m.A_log))).detach())
    assert not torch.allclose(J[0], J[1])


def test_diagonal_log_norms_handles_extremes_and_shut_units():
    a = torch.tensor([[1.0, 1.0], [1e-200, 0.0], [1e-200, 0.5], [1e200, 2.0]], dtype=torch.float64)  # (T=4, H=2)
    L2, Lf = diagonal_log_norms(a, 2), diagonal_log_norms(a, "fro")
    assert L2[1, 0] == pytest.approx(-200) and L2[2, 0] == pytest.approx(-400)
    assert L2[2, 1] == pytest.approx(math.log10(0.5))  # unit 1 shut at step 1 stays out of (2, 0) only
    assert L2[3, 1] == pytest.approx(0, abs=1e-12) and Lf[3, 1] == pytest.approx(0.5 * math.log10(2))  # 1e-200 * 1e200
    assert Lf[2, 0] == pytest.approx(-400)
    assert np.isnan(L2[0, 1]) and L2[0, 0] == 0 and Lf[0, 0] == pytest.approx(0.5 * math.log10(2))
    zero = diagonal_log_norms(torch.tensor([[1.0], [0.0], [0.3]], dtype=torch.float64), "fro")
    assert zero[1, 0] == -math.inf and zero[2, 0] == -math.inf and zero[2, 1] == pytest.approx(math.log10(0.3))


@pytest.mark.parametrize("name", ["nn.LSTM-2layer-bf", "nn.GRU-3layer", "LRU", "MinLSTM", "SelectiveSSM"])
def test_loss_gradient_norms_of_stacks_and_diagonal_cells_match_autograd(name):
    from bptt_core import loss_gradient_norms

    m, x = make(ALL[name]), sequence(8)
    readout = nn.Linear(H, 2).double()
    y = torch.randn(T, 2, dtype=torch.float64)
    stacked = isinstance(m, nn.RNNBase)
    top = h_block(m, -1) if stacked else slice(0, m.state_size)
    probes = [torch.zeros(top.stop - top.start, dtype=torch.float64, requires_grad=True) for _ in range(T)]
    state = torch.zeros(state_size(m), dtype=torch.float64)
    for t in range(T):  # the module's own steps, a zero added to what the readout depends on at each t
        state = module_step(m, x[t], state)
        state = torch.cat([state[: top.start], state[top] + probes[t], state[top.stop :]])
    seen = state[top] if stacked else m.output(x[-1], m.from_state(state))
    loss = ((readout(seen) - y[-1]) ** 2).sum()
    ref = [g.norm().item() for g in torch.autograd.grad(loss, probes)]
    np.testing.assert_allclose(loss_gradient_norms(m, readout, x, y), ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["MinGRU", "MinLSTM", "SelectiveSSM"])
def test_tiled_frobenius_equals_the_dense_chain(name):
    m = make(DIAGONAL[name])
    x = torch.randn(45, I, generator=torch.Generator().manual_seed(9), dtype=torch.float64) * 3
    a = cell_view(m).diagonal(x)  # (T, H)
    tiled = diagonal_log_norms(a, "fro", tile=8)  # six tiles: far pairs by the matrix product
    dense = jacobian_log_norms(m, x, method="chain", dtype=torch.float64)
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(dense))
    np.testing.assert_allclose(tiled[~np.isnan(dense)], dense[~np.isnan(dense)], rtol=0, atol=1e-10)


@pytest.mark.parametrize("tile", [4, 16, 64])
def test_tiled_frobenius_keeps_extremes_shut_units_and_underflowing_pairs(tile):
    from bptt_core.flow.jacobians import _recurrence

    g = torch.Generator().manual_seed(5)
    a = torch.rand(150, 5, generator=g, dtype=torch.float64) ** 3
    a[5:9, 2] = 0  # unit 2 shut: it leaves every product across steps 5..8
    a[40:, 0] *= 1e-90  # unit 0 sinks by 90 decades a step: pairs whose squares underflow
    a[60:70, 1] = 1e80  # unit 1 explodes for 10 steps
    a[70:100] *= 1e-12  # every unit sinks: far pairs whose squared sums underflow float64
    a[100:, :] = 0  # everything shut: exact zeros from step 100 on
    tiled, rows = diagonal_log_norms(a, "fro", tile=tile), _recurrence(a, "fro", 1)
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(rows))
    np.testing.assert_array_equal(np.isneginf(tiled), np.isneginf(rows))
    fin = np.isfinite(rows)
    np.testing.assert_allclose(tiled[fin], rows[fin], rtol=0, atol=1e-9)
    assert rows[fin].max() > 700 and rows[fin].min() < -280  # the extremes are really there
    # a pair by hand: log10 of the 2-norm of prod a over steps s+1..t
    t, s = 75, 30
    logs = torch.log(a[s + 1 : t + 1]).sum(0)  # (H,), no zero in that range for units 0, 1, 3, 4
    assert tiled[t, s] == pytest.approx(0.5 * torch.logsumexp(2 * logs, 0).item() / math.log(10), abs=1e-9)


@pytest.mark.parametrize(
    "name", ["nn.LSTM-2layer", "nn.GRU-3layer", "nn.RNN-relu-3layer-bf", "LRU", "MinGRU", "SelectiveSSM"]
)
def test_training_loss_and_dh_match_the_modules_own_forward(name):
    """The training loop's step-by-step loss (live view) against the module's own forward, float64."""
    from bptt_core.data.tasks import make_task
    from bptt_core.learning.training import batch_loss, live_view, parameter_groups

    m = make(ALL[name])
    readout = nn.Linear(H, 2).double()
    data = make_task("gaussian", T, 3, 0, I)
    data = type(data)(
        data.x.double(), torch.randn(T, 3, 2, dtype=torch.float64), data.loss_mask, data.name, data.loss_on
    )
    loss, hs = batch_loss(live_view(m), readout, data)
    out, _ = m(data.x.transpose(0, 1)) if getattr(m, "batch_first", False) else m(data.x)
    out = out.transpose(0, 1) if getattr(m, "batch_first", False) else out
    ref = ((readout(out[data.loss_mask]) - data.y[data.loss_mask]) ** 2).sum() / 3
    params = list(m.parameters())
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(loss, params), torch.autograd.grad(ref, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert len(hs) == T and hs[0].shape == (3, H if isinstance(m, nn.RNNBase) else m.state_size)
    groups = parameter_groups(m, readout)
    assert sum(len(v) for k, v in groups.items() if k != "readout") == len(params)  # every parameter in one group
