"""The exact Jacobian engine (bptt_core.flow.jacobians) against torch autograd, for every cell, stack and
diagonal cell; its analytic cases, its refusals, and hypothesis over the settings space.

The references never use the library's views (``CellView``): they step the torch module itself, one step
at a time from a given state, and differentiate it with ``torch.autograd.functional.jacobian`` in
float64, so a mistake in a hand-derived Jacobian cannot cancel against the same mistake in the
reference (tests/helpers/jacobians.py, tests/helpers/layouts.py).

Under hypothesis every returned matrix L is well formed: finite on and below the diagonal (or -inf
exactly where the product of step Jacobians is exactly zero, e.g. dead ReLU units) and NaN exactly above it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from torch import nn

from bptt_core import (
    LRU,
    ElmanRNN,
    ModelConfig,
    SelectiveSSM,
    build_model,
    build_task,
    diagonal_log_norms,
    jacobian_log_norms,
    lag_profile,
    layer_reach,
    loss_gradient_norms,
)
from bptt_core.config import MAX_HIDDEN
from bptt_core.flow import frobenius
from bptt_core.flow.jacobians import log_norm_products, step_jacobians
from bptt_core.flow.spectra import lyapunov_exponents
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.models.recurrent import cell_view, make_rnn
from tests.helpers.cells import jacobian_through
from tests.helpers.jacobians import active_relu, assert_L_close, is_lstm, module_states, module_step, reference_L
from tests.helpers.layouts import ALL, DIAGONAL, STACKED, H, I, T, make_module
from tests.helpers.strategies import PROFILE, WILD, only_value_errors, valid_small_configs

# -- the grid: every cell and activation, declared as data ------------------------------------

CELLS = [
    # (id, factory(input_size, hidden_size))
    ("elman-tanh", lambda i, h: ElmanRNN(i, h, "tanh")),
    ("elman-relu", lambda i, h: ElmanRNN(i, h, "relu")),
    ("elman-sigmoid", lambda i, h: ElmanRNN(i, h, "sigmoid")),
    ("elman-linear", lambda i, h: ElmanRNN(i, h, "linear")),
    ("torch-rnn-tanh", lambda i, h: nn.RNN(i, h, nonlinearity="tanh")),
    ("torch-rnn-relu", lambda i, h: nn.RNN(i, h, nonlinearity="relu")),
    ("torch-rnn-nobias", lambda i, h: nn.RNN(i, h, bias=False)),
    ("torch-lstm", lambda i, h: nn.LSTM(i, h)),
    ("torch-gru", lambda i, h: nn.GRU(i, h)),
]
SIZES = [(2, 3, 6), (3, 5, 6)]  # (input_size, hidden_size, T)
NORMS = ["fro", 2]


def make(factory, I, H, seed, dtype=torch.float64, scale=1.5):
    """A module with weights large enough that the nonlinearities are visibly non-linear."""
    torch.manual_seed(seed)
    m = factory(I, H)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-scale / math.sqrt(H), scale / math.sqrt(H))
    return m.to(dtype)


# -- step Jacobians ------------------------------------------------------------------------------


@pytest.mark.parametrize("I,H,T", SIZES)
@pytest.mark.parametrize("name,factory", CELLS, ids=[c[0] for c in CELLS])
def test_step_jacobians_match_autograd(name, factory, I, H, T):
    m = make(factory, I, H, seed=1)
    x = torch.randn(T, I, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5
    view = cell_view(m)
    states = module_states(m, x)
    # The view's forward is the module's forward.
    torch.testing.assert_close(view.run(x), states, rtol=1e-12, atol=1e-12)
    J = view.step_jacobians(x, states[:-1])  # (T, S, S)
    assert J.shape == (T, view.state_size, view.state_size) and J.dtype == torch.float64
    for t in range(T):
        ref = torch.autograd.functional.jacobian(lambda st, t=t: module_step(m, x[t], st), states[t])
        torch.testing.assert_close(J[t], ref, rtol=1e-10, atol=1e-12)
    # The module-level helper (input checks, float64 cast, trajectory) agrees.
    torch.testing.assert_close(step_jacobians(m, x), J, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,factory", [c for c in CELLS if c[0] in ("torch-lstm", "torch-gru", "elman-tanh")])
def test_step_jacobians_with_nonzero_initial_state(name, factory):
    I, H, T = 2, 4, 5
    m = make(factory, I, H, seed=3)
    S = 2 * H if is_lstm(m) else H
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(T, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(S, generator=gen, dtype=torch.float64)
    states = module_states(m, x, h0)
    J = step_jacobians(m, x, h0)
    for t in range(T):
        ref = torch.autograd.functional.jacobian(lambda st, t=t: module_step(m, x[t], st), states[t])
        torch.testing.assert_close(J[t], ref, rtol=1e-10, atol=1e-12)
    L = jacobian_log_norms(m, x, h0=h0)
    assert_L_close(L, reference_L(m, x, "fro", h0=h0), atol=1e-9)


# -- multi-step Jacobian norms -------------------------------------------------------------------

MULTI_GRID = [
    (name, factory, norm, block)
    for name, factory in CELLS
    for norm in NORMS
    for block in (("h", "c") if name == "torch-lstm" else ("h",))
]


@pytest.mark.parametrize("I,H,T", SIZES)
@pytest.mark.parametrize("name,factory,norm,block", MULTI_GRID, ids=[f"{g[0]}-{g[2]}-{g[3]}" for g in MULTI_GRID])
def test_jacobian_log_norms_match_autograd_float64(name, factory, norm, block, I, H, T):
    m = make(factory, I, H, seed=5)
    x = torch.randn(T, I, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 1.5
    L = jacobian_log_norms(m, x, norm=norm, block=block)
    assert_L_close(L, reference_L(m, x, norm, block), atol=1e-9)


@pytest.mark.parametrize("name,factory,norm,block", MULTI_GRID, ids=[f"{g[0]}-{g[2]}-{g[3]}" for g in MULTI_GRID])
def test_jacobian_log_norms_float32_model(name, factory, norm, block):
    """A float32 model: the engine multiplies in float32; the reference is the same weights in float64."""
    I, H, T = 3, 5, 6
    m32 = make(factory, I, H, seed=7, dtype=torch.float32)
    x = torch.randn(T, I, generator=torch.Generator().manual_seed(8)) * 1.5  # float32 input
    L = jacobian_log_norms(m32, x, norm=norm, block=block)
    m64 = make(factory, I, H, seed=7, dtype=torch.float32).to(torch.float64)
    assert_L_close(L, reference_L(m64, x.to(torch.float64), norm, block), atol=1e-4)
    # and asking for float64 products from a float32 model gives the float64 answer
    L64 = jacobian_log_norms(m32, x, norm=norm, block=block, dtype=torch.float64)
    assert_L_close(L64, reference_L(m64, x.to(torch.float64), norm, block), atol=1e-9)


SPLIT_GRID = [(name, factory, block) for name, factory, norm, block in MULTI_GRID if norm == "fro"]


@pytest.mark.parametrize("leaf", [1, 4])
@pytest.mark.parametrize("I,H,T", [(2, 3, 11), (3, 5, 9)])
@pytest.mark.parametrize("name,factory,block", SPLIT_GRID, ids=[f"{g[0]}-{g[2]}" for g in SPLIT_GRID])
def test_split_frobenius_matches_autograd(monkeypatch, name, factory, block, I, H, T, leaf):
    """The Gram-split method on every cell and block, with every pair reached through the levels
    (leaf 1) and through levels plus leaf chains (leaf 4)."""
    monkeypatch.setattr(frobenius, "LEAF", leaf)
    m = make(factory, I, H, seed=11)
    x = torch.randn(T, I, generator=torch.Generator().manual_seed(12), dtype=torch.float64) * 1.5
    L = jacobian_log_norms(m, x, norm="fro", block=block, method="split")
    assert_L_close(L, reference_L(m, x, "fro", block), atol=1e-10)


@pytest.mark.parametrize("name,factory,block", SPLIT_GRID, ids=[f"{g[0]}-{g[2]}" for g in SPLIT_GRID])
def test_split_frobenius_of_a_float32_model_is_float64_exact(monkeypatch, name, factory, block):
    """The split runs in float64 whatever the model's precision: float64 accuracy from float32 weights."""
    monkeypatch.setattr(frobenius, "LEAF", 2)
    I, H, T = 3, 5, 10
    m32 = make(factory, I, H, seed=13, dtype=torch.float32)
    x = torch.randn(T, I, generator=torch.Generator().manual_seed(14)) * 1.5
    L = jacobian_log_norms(m32, x, norm="fro", block=block, method="split")
    assert_L_close(L, reference_L(m32.to(torch.float64), x.to(torch.float64), "fro", block), atol=1e-10)


def test_batched_input_with_singleton_batch_is_accepted():
    m = make(CELLS[0][1], 2, 3, seed=0)
    x = torch.randn(6, 2, dtype=torch.float64)
    np.testing.assert_array_equal(jacobian_log_norms(m, x[:, None, :]), jacobian_log_norms(m, x))
    np.testing.assert_array_equal(jacobian_log_norms(m, x.numpy()), jacobian_log_norms(m, x))


# -- analytic cases ------------------------------------------------------------------------------


def orthogonal(H, seed):
    q, r = torch.linalg.qr(torch.randn(H, H, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_linear_orthogonal_rnn_has_unit_spectral_norm_at_every_lag(dtype, atol):
    H, T = 6, 60
    m = ElmanRNN(2, H, "linear").to(torch.float64)
    with torch.no_grad():
        m.weight_hh_l0.copy_(orthogonal(H, 0))
    m = m.to(dtype)
    x = torch.randn(T, 2, generator=torch.Generator().manual_seed(1), dtype=dtype)
    low = np.tril_indices(T)
    L2 = jacobian_log_norms(m, x, norm=2)
    np.testing.assert_allclose(L2[low], 0.0, atol=atol)
    Lf = jacobian_log_norms(m, x, norm="fro")
    np.testing.assert_allclose(Lf[low], 0.5 * math.log10(H), atol=atol)


def test_linear_orthogonal_init_from_config_has_unit_spectral_norm():
    """The same through build_model: the orthogonal init itself (float32 weights)."""
    cfg = ModelConfig(activation="linear", init="orthogonal", gain=1.0, hidden_size=16, seq_len=80)
    rnn, _ = build_model(cfg)
    L = jacobian_log_norms(rnn, build_task(cfg).x[:, 0], norm=2)
    np.testing.assert_allclose(L[np.tril_indices(80)], 0.0, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("a,T", [(0.5, 400), (2.5, 400), (0.9, 50), (1.0, 30)])
def test_active_relu_is_exactly_a_to_the_lag(a, T, dtype):
    H = 5
    m = active_relu(H, a, dtype)
    x = torch.rand(T, 2, generator=torch.Generator().manual_seed(0), dtype=dtype)  # positive inputs
    t, s = np.tril_indices(T)
    expect = (t - s) * math.log10(a)
    atol = 1e-9 if dtype == torch.float64 else 1e-4
    L2 = jacobian_log_norms(m, x, norm=2)
    Lf = jacobian_log_norms(m, x, norm="fro")
    assert np.isfinite(L2[t, s]).all() and np.isfinite(Lf[t, s]).all()
    np.testing.assert_allclose(L2[t, s], expect, rtol=0, atol=atol)
    np.testing.assert_allclose(Lf[t, s], expect + 0.5 * math.log10(H), rtol=0, atol=atol)
    # the two ends of the dynamic range the issue names: 0.5^399 ~ 1e-120, 2.5^399 ~ 1e+159
    assert L2[T - 1, 0] == pytest.approx((T - 1) * math.log10(a), abs=atol)


def test_exact_zero_gives_minus_inf_not_nan():
    """ReLU with every unit off from step 3 on: products through it are exactly 0 -> -inf."""
    H, T = 4, 8
    m = ElmanRNN(1, H, "relu").to(torch.float64)
    with torch.no_grad():
        m.weight_hh_l0.copy_(0.5 * torch.eye(H))
        m.weight_ih_l0.fill_(1.0)
        m.bias_ih_l0.zero_()
        m.bias_hh_l0.zero_()
    x = torch.ones(T, 1, dtype=torch.float64)
    x[3] = -100.0  # a_3 < 0 for every unit: J_3 = 0
    L = jacobian_log_norms(m, x, norm=2)
    for t in range(T):
        for s in range(t + 1):
            if s < 3 <= t:
                assert L[t, s] == -np.inf
            else:
                assert L[t, s] == pytest.approx((t - s) * math.log10(0.5), abs=1e-12)
    assert np.isnan(L[np.triu_indices(T, 1)]).all()


def test_chaotic_tanh_network_is_finite_and_grows_at_its_lyapunov_rate():
    cfg = ModelConfig(cell="rnn", activation="tanh", init="gaussian", gain=3.0, hidden_size=64, seq_len=300)
    rnn, _ = build_model(cfg)
    x = build_task(cfg).x[:, 0]
    L = jacobian_log_norms(rnn, x, norm="fro")
    T = cfg.seq_len
    low = np.tril_indices(T)
    assert np.isfinite(L[low]).all()
    assert np.isnan(L[np.triu_indices(T, 1)]).all()
    lam = lyapunov_exponents(rnn, x, n_exponents=1, burn_in=20)[0] / math.log(10)  # log10 per step
    assert lam > 0.02  # chaotic: the network really is expanding
    # Long lags only: short lags carry the transient of the leading direction's alignment.
    prof = lag_profile(L)  # (T,) mean over t of L[t, t - k]
    slope = np.polyfit(np.arange(40, 241), prof[40:241], 1)[0]
    assert slope == pytest.approx(lam, rel=0.15)
    assert L[T - 1, 0] > 5  # ||dh_300/dh_1|| explodes far beyond float32's comfort zone, still exact


def test_log_space_chain_matches_float64_reference_over_a_huge_range():
    """Random chains whose products span 1e-150..1e+150: float32 products, float64 reference."""
    gen = torch.Generator().manual_seed(0)
    T, S = 120, 6
    # per-step factors 10^N(-2.5, 2^2) for the first half, 10^N(+2.5, 2^2) after: products sink to
    # ~1e-150 and climb back, and single steps jump by up to ~1e-8 or 1e+8.
    drift = torch.where(torch.arange(T) < T // 2, -2.5, 2.5).to(torch.float64)
    scales = 10 ** (drift + 2 * torch.randn(T, generator=gen, dtype=torch.float64))
    J = torch.randn(T, S, S, generator=gen, dtype=torch.float64) * scales[:, None, None]
    ref = np.full((T, T), np.nan)
    for t in range(T):
        P, log = torch.eye(S, dtype=torch.float64), 0.0
        for s in range(t, -1, -1):  # P = J_t ... J_{s+1}, renormalised to keep it representable
            n2 = torch.linalg.matrix_norm(P, ord=2).item()
            ref[t, s] = log + math.log10(n2)
            if s > 0:
                P = P @ J[s]
                f = torch.linalg.matrix_norm(P).item()
                P, log = P / f, log + math.log10(f)
    for dtype, atol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        L = log_norm_products(J, norm=2, dtype=dtype)
        assert np.nanmax(np.abs(L)) > 100  # the range really is beyond float32 and more
        assert_L_close(L, ref, atol=atol)


def test_float32_spectral_norm_of_a_tiny_lstm_block_does_not_underflow():
    """A shut output gate (o ~ sigmoid(-50) ~ 2e-22) makes the h-block ~1e-22 of the c-block."""
    torch.manual_seed(0)
    H = 4
    m = nn.LSTM(2, H)
    with torch.no_grad():
        m.bias_ih_l0[3 * H :].fill_(-50.0)  # output gate shut
        m.bias_ih_l0[H : 2 * H].fill_(5.0)  # forget gate open: the c-block stays O(1)
    x = torch.randn(8, 2)
    ref = jacobian_log_norms(m, x, norm=2, dtype=torch.float64)
    assert np.nanmin(ref[np.tril_indices(8, -1)]) < -20  # the block really is that small
    assert_L_close(jacobian_log_norms(m, x, norm=2), ref, atol=1e-4)


def test_float32_frobenius_norm_of_a_tiny_lstm_block_is_exact():
    torch.manual_seed(0)
    H = 4
    m = nn.LSTM(2, H)
    with torch.no_grad():
        m.bias_ih_l0[3 * H :].fill_(-50.0)
        m.bias_ih_l0[H : 2 * H].fill_(5.0)
    x = torch.randn(8, 2)
    ref = jacobian_log_norms(m, x, norm="fro", dtype=torch.float64)
    assert_L_close(jacobian_log_norms(m, x, norm="fro"), ref, atol=1e-4)


LOSS_CELLS = [c for c in CELLS if c[0] in ("elman-tanh", "elman-sigmoid", "torch-rnn-relu", "torch-lstm", "torch-gru")]


@pytest.mark.parametrize("name,factory", LOSS_CELLS, ids=[c[0] for c in LOSS_CELLS])
def test_loss_gradient_norms_match_autograd(name, factory):
    I, H, O, T = 3, 5, 2, 7
    m = make(factory, I, H, seed=11)
    gen = torch.Generator().manual_seed(12)
    readout = nn.Linear(H, O).to(torch.float64)
    x = torch.randn(T, I, generator=gen, dtype=torch.float64)
    y = torch.randn(T, O, generator=gen, dtype=torch.float64)
    # autograd: step the module, keep every h_t, loss on the last step's readout
    h = torch.zeros(1, H, dtype=torch.float64)  # unbatched call: x[t : t + 1] is (1, I)
    c = torch.zeros(1, H, dtype=torch.float64)
    hs = []
    for t in range(T):
        if is_lstm(m):
            _, (h, c) = m(x[t : t + 1], (h, c))
        else:
            _, h = m(x[t : t + 1], h)
        h.retain_grad()  # the module's own h_t: its grad is the total dL/dh_t
        hs.append(h)
    loss = ((readout(hs[-1].reshape(H)) - y[-1]) ** 2).sum()
    loss.backward()
    ref = np.array([h.grad.norm().item() for h in hs])
    got = loss_gradient_norms(m, readout, x, y)
    assert got.shape == (T,) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(loss_gradient_norms(m, readout, x, y[-1]), ref, rtol=1e-10, atol=1e-14)


def test_loss_gradient_norms_rejects_mismatched_target_and_readout():
    m = make(CELLS[0][1], 2, 3, seed=0)
    x = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="output_size"):
        loss_gradient_norms(m, nn.Linear(3, 2), x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="hidden_size"):
        loss_gradient_norms(m, nn.Linear(5, 2), x, torch.zeros(4, 2))


@pytest.mark.parametrize("norm,diag", [("fro", 0.5 * math.log10(4)), (2, 0.0)])
def test_a_single_step_is_just_the_identity(norm, diag):
    L = jacobian_log_norms(make(CELLS[-1][1], 2, 4, seed=0), torch.randn(1, 2, dtype=torch.float64), norm=norm)
    assert L.shape == (1, 1) and L[0, 0] == pytest.approx(diag, abs=1e-15)


def test_lstm_h0_with_only_h_means_c0_is_zero():
    m = make(CELLS[-2][1], 2, 3, seed=0)  # nn.LSTM
    x = torch.randn(6, 2, dtype=torch.float64)
    h = torch.randn(3, dtype=torch.float64)
    full = torch.cat([h, torch.zeros(3, dtype=torch.float64)])
    np.testing.assert_array_equal(jacobian_log_norms(m, x, h0=h), jacobian_log_norms(m, x, h0=full))
    assert not np.array_equal(jacobian_log_norms(m, x, h0=h), jacobian_log_norms(m, x))


# == Stacked / batch-first torch modules and the diagonal cells against autograd (float64) ===================


def layer_state_size(m):
    return 2 * H if isinstance(m, nn.LSTM) else H


def state_size(m):
    if isinstance(m, nn.RNNBase):
        return m.num_layers * layer_state_size(m)
    return m.state_size


def full_state_step(m, x_t, state):
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


def full_states(m, x):
    state = torch.zeros(state_size(m), dtype=torch.float64)
    out = [state]
    with torch.no_grad():
        for t in range(x.shape[0]):
            state = full_state_step(m, x[t], state)
            out.append(state)
    return torch.stack(out)


def autograd_block(m, x, states, t, s, rows, cols):
    return jacobian_through(full_state_step, m, x, states, t, s, rows, cols)


def h_block(m, layer):
    if not isinstance(m, nn.RNNBase):
        return slice(0, m.state_size)
    start = (layer % m.num_layers) * layer_state_size(m)
    return slice(start, start + H)


def top_layer_reference_L(m, x, norm, layer=-1):
    states = full_states(m, x)
    sl = h_block(m, layer)
    L = np.full((T, T), np.nan)
    for t in range(T):
        for s in range(t + 1):
            n = torch.linalg.matrix_norm(autograd_block(m, x, states, t, s, sl, sl), ord=norm).item()
            L[t, s] = math.log10(n) if n > 0 else -math.inf
    return L


def sequence(seed=1):
    return torch.randn(T, I, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- step Jacobians and states ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL))
def test_states_and_full_state_step_jacobians_match_the_module_under_autograd(name):
    m, x = make_module(ALL[name]), sequence()
    states = full_states(m, x)
    view = cell_view(m)
    torch.testing.assert_close(view.run(x), states, rtol=1e-12, atol=1e-13)
    J = step_jacobians(m, x)  # (T, S, S)
    ref = torch.stack(
        [torch.autograd.functional.jacobian(lambda s, t=t: full_state_step(m, x[t], s), states[t]) for t in range(T)]
    )
    torch.testing.assert_close(J, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(ALL))
def test_jacobian_log_norms_top_layer_matches_autograd(name, norm):
    m, x = make_module(ALL[name]), sequence(2)
    L = jacobian_log_norms(m, x, norm=norm)
    ref = top_layer_reference_L(m, x, norm)
    np.testing.assert_array_equal(np.isnan(L), np.isnan(ref))
    np.testing.assert_allclose(L[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", [n for n in STACKED if "layer" in n])
def test_layer_picks_each_layers_own_block(name, norm):
    m, x = make_module(STACKED[name]), sequence(3)
    layers = [jacobian_log_norms(m, x, norm=norm, layer=k) for k in range(m.num_layers)]
    for k in range(m.num_layers):
        ref = top_layer_reference_L(m, x, norm, layer=k)
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
    m, x = make_module(STACKED["nn.GRU-3layer"]), sequence(5)
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
    m, x = make_module(STACKED[name]), sequence(6)
    t = T - 2
    R = layer_reach(m, x, norm=norm, t=t)
    states = full_states(m, x)
    top = h_block(m, -1)
    assert R.shape == (m.num_layers, T) and np.isnan(R[:, t + 1 :]).all()
    for k in range(m.num_layers):
        for s in range(t + 1):
            n = torch.linalg.matrix_norm(autograd_block(m, x, states, t, s, top, h_block(m, k)), ord=norm).item()
            expected = math.log10(n) if n > 0 else -math.inf
            assert R[k, s] == pytest.approx(expected, abs=1e-9), (k, s)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(DIAGONAL))
def test_diagonal_fast_path_equals_the_dense_chain_and_the_split(name, norm):
    m = make_module(DIAGONAL[name])
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

    m, x = make_module(ALL[name]), sequence(8)
    readout = nn.Linear(H, 2).double()
    y = torch.randn(T, 2, dtype=torch.float64)
    stacked = isinstance(m, nn.RNNBase)
    top = h_block(m, -1) if stacked else slice(0, m.state_size)
    probes = [torch.zeros(top.stop - top.start, dtype=torch.float64, requires_grad=True) for _ in range(T)]
    state = torch.zeros(state_size(m), dtype=torch.float64)
    for t in range(T):  # the module's own steps, a zero added to what the readout depends on at each t
        state = full_state_step(m, x[t], state)
        state = torch.cat([state[: top.start], state[top] + probes[t], state[top.stop :]])
    seen = state[top] if stacked else m.output(x[-1], m.from_state(state))
    loss = ((readout(seen) - y[-1]) ** 2).sum()
    ref = [g.norm().item() for g in torch.autograd.grad(loss, probes)]
    np.testing.assert_allclose(loss_gradient_norms(m, readout, x, y), ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["MinGRU", "MinLSTM", "SelectiveSSM"])
def test_tiled_frobenius_equals_the_dense_chain(name):
    m = make_module(DIAGONAL[name])
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


# == Refusals: the memory limit, and every bad argument named ================================================


def test_jacobian_log_norms_refuses_over_the_memory_limit_before_allocating():
    rnn = nn.RNN(1, MAX_HIDDEN)
    x = torch.zeros(2000, 1)  # 24 * 2000 * 512^2 bytes ~ 13 GB of buffers
    with pytest.raises(ValueError, match="hidden_size.*seq_len"):
        jacobian_log_norms(rnn, x)


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


# == Hypothesis: the matrix is a ValueError or well formed ===================================================

# -- the gradient-flow matrix: what well formed means -----------------------------------------------


def exactly_zero_products(J: torch.Tensor, block: slice) -> np.ndarray:
    """(T, T) bool: whether (J_t ... J_{s+1})[block, block] is exactly zero. Float64, every running
    product renormalised after every step, so nothing underflows on its way to zero; batched over s."""
    T = J.shape[0]
    zero = np.zeros((T, T), dtype=bool)
    P = J[1:].clone()  # (T-1, S, S): lag 1, P[s] = J_{s+1}
    for k in range(1, T):
        s = np.arange(T - k)
        zero[s + k, s] = (P[:, block, block] == 0).flatten(1).all(1).numpy()
        n = torch.linalg.matrix_norm(P)  # (T-k,)
        P = P / torch.where(n > 0, n, 1.0)[:, None, None]
        if k < T - 1:
            P = torch.bmm(J[k + 1 :], P[:-1])  # extend every product by one step
    return zero


# A product of unit-norm step Jacobians can shrink by more than float32's range in one matmul; the
# engine must then still give the finite value (about 1e-50 here), not -inf.
UNDERFLOW_CFG = ModelConfig(
    cell="gru", hidden_size=5, input_size=1, seq_len=4, init="kaiming", gain=100.0, seed=20, batch_size=2
)


def assert_well_formed(L: np.ndarray, T: int, J: torch.Tensor, block: slice | None = None, norm="fro"):
    """NaN exactly above the diagonal; on and below it finite, or -inf exactly where the product is 0."""
    assert L.shape == (T, T) and L.dtype == np.float64
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    assert np.isnan(L[upper]).all(), "L must be NaN exactly above the diagonal"
    lower = ~upper
    assert not np.isnan(L[lower]).any(), f"NaN on or below the diagonal at {np.argwhere(np.isnan(L) & lower)[:3]}"
    assert not (L[lower] == np.inf).any(), "+inf: a norm overflowed"
    block = block or slice(0, J.shape[1])
    zero = exactly_zero_products(J, block)
    neg_inf = np.isneginf(L) & lower
    assert not (zero & lower & ~neg_inf).any(), (
        f"exactly-zero product not -inf at {np.argwhere(zero & lower & ~neg_inf)[:3]}"
    )
    wrong = neg_inf & ~zero
    assert not wrong.any(), f"-inf where the product is not zero at {np.argwhere(wrong)[:3]}"


def test_float32_gradient_flow_does_not_underflow_to_minus_inf():
    rnn, _ = build_model(UNDERFLOW_CFG)
    x = build_task(UNDERFLOW_CFG).x[:, 0]
    L32 = jacobian_log_norms(rnn, x)
    L64 = jacobian_log_norms(rnn, x, dtype=torch.float64)
    assert np.isfinite(L64[3, 0]) and L64[3, 0] < -40  # the true value: about 1e-50
    np.testing.assert_allclose(L32, L64, rtol=0, atol=1e-3)


def small_enough(cfg: ModelConfig) -> bool:
    return cfg.hidden_size <= 6 and cfg.seq_len <= 400 and cfg.batch_size <= 3


@settings(PROFILE, max_examples=250)
@given(valid_small_configs(), st.sampled_from(["fro", 2]))
@example(ModelConfig(cell="rnn", activation="relu", hidden_size=3, init="identity", seq_len=8, task="sine"), "fro")
@example(ModelConfig(cell="rnn", activation="linear", init="gaussian", gain=100.0, hidden_size=2, seq_len=300), "fro")
def test_build_and_gradient_flow_are_value_error_or_well_formed(cfg, norm):
    assert small_enough(cfg)
    built = only_value_errors(build_model, cfg)
    data = only_value_errors(build_task, cfg)
    if built is None or data is None:
        event("refused by build_model / build_task")
        return
    rnn, readout = built
    assert all(torch.isfinite(p).all() for p in [*rnn.parameters(), *readout.parameters()])
    assert data.x.shape == (cfg.seq_len, cfg.batch_size, rnn.input_size)
    assert torch.isfinite(data.x).all() and torch.isfinite(data.y).all()
    x = data.x[:, 0]  # (T, I)
    L = only_value_errors(jacobian_log_norms, rnn, x, norm=norm)
    if L is None:
        return
    event(f"L computed ({'long' if cfg.seq_len >= 100 else 'short'} sequence)")
    J = step_jacobians(rnn, x)  # (T, S, S) float64
    block = slice(0, cfg.hidden_size) if cfg.cell == "lstm" else None
    assert_well_formed(L, cfg.seq_len, J, block, norm)
    prof = lag_profile(L)
    assert prof.shape == (cfg.seq_len,) and not (prof == np.inf).any()
    rate = decay_rate(L)
    assert math.isnan(rate) or math.isfinite(rate) or (rate == -math.inf)
    horizon = memory_horizon(L)
    assert horizon is None or 1 <= horizon < cfg.seq_len


@settings(PROFILE, max_examples=100)
@given(
    st.sampled_from(["rnn-tanh", "rnn-relu", "lstm", "gru"]),
    st.one_of(WILD, st.sampled_from(["fro", 2, "2", 2.0, "nuc", 1])),
    st.integers(0, 6),
    st.one_of(st.integers(1, 4), WILD),
    st.sampled_from(["finite", "nan", "inf", "huge"]),
)
def test_jacobian_log_norms_bad_arguments(kind, norm, T, width, values):
    """Wrong norms, widths, lengths and non-finite inputs: ValueError, or a well-formed L."""
    torch.manual_seed(0)
    rnn = {
        "rnn-tanh": lambda: nn.RNN(3, 4),
        "rnn-relu": lambda: ElmanRNN(3, 4, "relu"),
        "lstm": lambda: nn.LSTM(3, 4),
    }.get(kind, lambda: nn.GRU(3, 4))()
    if not isinstance(width, int) or isinstance(width, bool) or not 0 <= width <= 8:
        width = 3
    x = torch.randn(T, width)
    if values != "finite" and T > 0:
        x[T // 2, 0] = {"nan": float("nan"), "inf": float("inf"), "huge": 1e30}[values]
    L = only_value_errors(jacobian_log_norms, rnn, x, norm=norm)
    if L is not None:
        assert width == 3 and T >= 1 and values in ("finite", "huge") and norm in ("fro", 2)
        block = slice(0, 4) if kind == "lstm" else None
        assert_well_formed(L, T, step_jacobians(rnn, x), block, norm)
