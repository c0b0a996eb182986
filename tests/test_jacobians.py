"""The exact Jacobian engine against torch autograd (micrograd style), and its analytic cases.

The references never use ``CellView``: they step the torch module itself (``nn.RNN`` / ``nn.LSTM``
/ ``nn.GRU`` / ``ElmanRNN``) and differentiate it with ``torch.autograd.functional.jacobian`` in
float64, so a mistake in a hand-derived Jacobian cannot cancel against the same mistake in the
reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cells import jacobian_through
from torch import nn

from bptt_core import (
    ElmanRNN,
    ModelConfig,
    build_model,
    build_task,
    decay_rate,
    jacobian_log_norms,
    lag_profile,
    lag_view,
    loss_gradient_norms,
    memory_horizon,
)
from bptt_core.flow import frobenius
from bptt_core.flow.jacobians import log_norm_products, step_jacobians
from bptt_core.flow.spectra import lyapunov_exponents
from bptt_core.models.recurrent import cell_view

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


def is_lstm(m):
    return isinstance(m, nn.LSTM)


def module_step(m, x_t, state):
    """One step of the torch module itself: x_t (I,), state (S,) -> (S,) (LSTM: (h, c))."""
    H = m.hidden_size
    if is_lstm(m):
        _, (h, c) = m(x_t[None], (state[:H].reshape(1, H), state[H:].reshape(1, H)))
        return torch.cat([h.reshape(H), c.reshape(H)])
    _, h = m(x_t[None], state.reshape(1, H))
    return h.reshape(H)


def module_states(m, x, h0=None):
    """(T + 1, S) states by the torch module, row 0 the initial state."""
    S = 2 * m.hidden_size if is_lstm(m) else m.hidden_size
    state = torch.zeros(S, dtype=x.dtype) if h0 is None else h0
    out = [state]
    with torch.no_grad():
        for t in range(x.shape[0]):
            state = module_step(m, x[t], state)
            out.append(state)
    return torch.stack(out)


def autograd_multi_step(m, x, states, t, s, rows: slice, cols: slice):
    """d state_t[rows] / d state_s[cols] by autograd through the module run from s to t.

    0-indexed as in docs/design.md: state_t is the state after x[t] (states[t + 1]); the other entries
    of state_s (LSTM: c_s for block 'h') are held fixed.
    """
    return jacobian_through(module_step, m, x, states, t, s, rows, cols)


def reference_L(m, x, norm, block="h", h0=None):
    H = m.hidden_size
    sl = slice(H, 2 * H) if block == "c" else slice(0, H)
    states = module_states(m, x, h0)
    T = x.shape[0]
    L = np.full((T, T), np.nan)
    for t in range(T):
        for s in range(t + 1):
            J = autograd_multi_step(m, x, states, t, s, sl, sl)
            n = torch.linalg.matrix_norm(J, ord=norm).item()
            L[t, s] = math.log10(n) if n > 0 else -math.inf  # every ReLU unit off: exactly 0
    return L


def assert_L_close(L, ref, atol):
    assert L.shape == ref.shape and L.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(L), np.isnan(ref))
    assert np.isnan(L[np.triu_indices(L.shape[0], 1)]).all()
    np.testing.assert_allclose(L[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=atol)


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


def active_relu(H, a, dtype):
    """ReLU with W_hh = a I and strictly positive drive: every unit stays on, J_t = a I."""
    m = ElmanRNN(2, H, "relu").to(torch.float64)  # a exactly, then rounded once to dtype
    with torch.no_grad():
        m.weight_hh_l0.copy_(a * torch.eye(H, dtype=torch.float64))
        m.weight_ih_l0.uniform_(0.1, 1.0)
        m.bias_ih_l0.fill_(0.1)
        m.bias_hh_l0.fill_(0.05)
    return m.to(dtype)


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


# -- what the pages read off L ---------------------------------------------------------------------


def exact_L(T, rate, diag=0.0):
    """L[t, s] = diag + rate * (t - s) for s <= t, NaN above: a known geometric decay."""
    t, s = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    return np.where(s <= t, diag + rate * (t - s), np.nan)


def test_lag_view_reindexes_by_lag():
    L = np.array([[0.0, np.nan, np.nan], [1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    M = lag_view(L)
    expect = np.array([[0.0, np.nan, np.nan], [2.0, 1.0, np.nan], [5.0, 4.0, 3.0]])  # M[t, k] = L[t, t - k]
    np.testing.assert_array_equal(M, expect)


def test_lag_profile_is_the_mean_over_t_per_lag():
    L = np.array([[0.0, np.nan, np.nan], [1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    np.testing.assert_allclose(lag_profile(L), [(0 + 2 + 5) / 3, (1 + 4) / 2, 3.0])
    # -inf (an exactly-zero product) is left out of the mean instead of swallowing it
    L[2, 1] = -np.inf
    np.testing.assert_allclose(lag_profile(L), [7 / 3, 1.0, 3.0])


@pytest.mark.parametrize("rate,diag", [(-0.3, 0.0), (-0.05, 0.5 * math.log10(8)), (0.2, 0.0), (0.0, 0.0)])
def test_decay_rate_recovers_a_known_slope(rate, diag):
    L = exact_L(40, rate, diag)
    assert decay_rate(L) == pytest.approx(rate, abs=1e-12)
    assert decay_rate(L, max_lag=5) == pytest.approx(rate, abs=1e-12)
    assert math.isnan(decay_rate(exact_L(2, rate)))  # one lag: no slope


def test_decay_rate_of_the_engine_on_active_relu():
    m = active_relu(4, 0.8, torch.float64)
    x = torch.rand(30, 2, dtype=torch.float64)
    assert decay_rate(jacobian_log_norms(m, x, norm=2)) == pytest.approx(math.log10(0.8), abs=1e-12)


@pytest.mark.parametrize(
    "rate,threshold,expect",
    [(-0.7, 1e-3, 5), (-1.0, 1e-3, 4), (-0.5, 0.1, 3), (-0.01, 1e-3, None), (0.3, 1e-3, None)],
)
def test_memory_horizon(rate, threshold, expect):
    # first k with rate * k < log10(threshold): -0.7 -> k = 5 (-3.5); -1.0 -> k = 4 (-3 is not below -3)
    assert memory_horizon(exact_L(30, rate, diag=0.7), threshold) == expect


@pytest.mark.parametrize("threshold", [0, 1, -0.1, 2.0])
def test_memory_horizon_rejects_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        memory_horizon(exact_L(5, -1.0), threshold)


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
