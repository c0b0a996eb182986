"""Spectra of the recurrent matrix, Pascanu et al.'s sigma_1 vs 1/gamma verdict, and Lyapunov exponents
(bptt_core.flow.spectra); finite spectra over the settings space (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn

from bptt_core import ElmanRNN, ModelConfig, build_model, build_task, jacobian_log_norms, spectrum
from bptt_core.flow.spectra import lyapunov_exponents, lyapunov_log10
from tests.helpers.strategies import PROFILE, only_value_errors, valid_small_configs


def elman_with(W, act="tanh", I=2):
    W = torch.as_tensor(W, dtype=torch.float64)
    m = ElmanRNN(I, W.shape[0], act).double()
    with torch.no_grad():
        m.weight_hh_l0.copy_(W)
    return m


def test_spectrum_of_a_known_matrix():
    # eigenvalues 0.5 +- 0.5i (|.| = 1/sqrt 2) and 0.3; a non-normal part makes sigma_1 > rho
    W = torch.tensor([[0.5, -0.5, 2.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.3]], dtype=torch.float64)
    sp = spectrum(elman_with(W))
    np.testing.assert_allclose(sorted(np.abs(sp.eigenvalues)), sorted([0.3, 2**-0.5, 2**-0.5]), rtol=1e-12)
    np.testing.assert_allclose(sp.singular_values, torch.linalg.svdvals(W).numpy(), rtol=1e-12)
    assert list(sp.singular_values) == sorted(sp.singular_values, reverse=True)
    assert sp.rho == pytest.approx(2**-0.5, rel=1e-12)
    assert sp.sigma1 == pytest.approx(torch.linalg.svdvals(W)[0].item(), rel=1e-12)
    assert sp.matrix == "W_hh" and sp.gamma == 1.0 and sp.bound == 1.0


@pytest.mark.parametrize("act,gamma", [("tanh", 1.0), ("relu", 1.0), ("sigmoid", 0.25), ("linear", 1.0)])
def test_verdict_follows_pascanu_et_al(act, gamma):
    for scale, vanishes in ((0.9, True), (1.1, False)):
        m = elman_with(scale / gamma * torch.eye(3), act)  # sigma_1 = scale / gamma
        sp = spectrum(m)
        assert sp.gamma == gamma and sp.bound == pytest.approx(1 / gamma)
        assert sp.sigma1 == pytest.approx(scale / gamma)
        assert ("must vanish" in sp.verdict()) == vanishes
        assert ("exploding gradients are possible" in sp.verdict()) == (not vanishes)


def test_sigma_below_bound_really_vanishes_at_least_as_fast_as_the_bound():
    """sigma_1 < 1/gamma: every ||dh_t/dh_s||_2 <= (gamma sigma_1)^(t-s), in the engine's own numbers."""
    torch.manual_seed(0)
    for act in ("tanh", "sigmoid"):
        m = ElmanRNN(3, 8, act).double()
        with torch.no_grad():
            W = torch.randn(8, 8, dtype=torch.float64)
            m.weight_hh_l0.copy_(W / torch.linalg.svdvals(W)[0] * 0.9 / {"tanh": 1.0, "sigmoid": 0.25}[act])
        sp = spectrum(m)
        x = torch.randn(40, 3, dtype=torch.float64)
        L = jacobian_log_norms(m, x, norm=2)
        t, s = np.tril_indices(40)
        assert (L[t, s] <= (t - s) * math.log10(sp.gamma * sp.sigma1) + 1e-9).all()


@pytest.mark.parametrize("cell,label", [("lstm", "LSTM cell-candidate"), ("gru", "GRU candidate")])
def test_gated_cells_report_their_candidate_block(cell, label):
    torch.manual_seed(0)
    m = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](3, 5)
    H = 5
    k = 2  # LSTM gates (i, f, g, o): g is block 2; GRU (r, z, n): n is block 2
    W = m.weight_hh_l0.detach().double()[k * H : (k + 1) * H]
    sp = spectrum(m)
    assert label in sp.matrix
    assert sp.sigma1 == pytest.approx(torch.linalg.svdvals(W)[0].item(), rel=1e-12)
    assert sp.rho == pytest.approx(torch.linalg.eigvals(W).abs().max().item(), rel=1e-12)


def test_lyapunov_of_a_linear_diagonal_network_is_the_log_of_its_eigenvalues():
    d = torch.tensor([1.5, 0.9, -0.5, 0.1], dtype=torch.float64)
    m = elman_with(torch.diag(d), "linear")
    x = torch.randn(50, 2, dtype=torch.float64)
    lam = lyapunov_exponents(m, x)
    np.testing.assert_allclose(lam, np.log(np.sort(d.abs().numpy())[::-1]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lyapunov_log10(m, x, n_exponents=2), lam[:2] / math.log(10), atol=1e-12)


def test_lyapunov_of_a_linear_network_with_non_normal_w_is_the_log_spectral_radius():
    """Non-normal W: the top exponent is log rho (eigenvalues), not log sigma_1, in the long run."""
    W = torch.tensor([[0.8, 3.0], [0.0, 0.5]], dtype=torch.float64)
    m = elman_with(W, "linear")
    x = torch.zeros(400, 2, dtype=torch.float64)
    lam = lyapunov_exponents(m, x, burn_in=100)
    np.testing.assert_allclose(lam, np.log([0.8, 0.5]), atol=1e-3)


def test_top_lyapunov_exponent_matches_the_engine_long_lag_norm():
    """log ||dh_T/dh_1|| / (T - 1) -> lambda_1: the QR method and the log-space products agree."""
    cfg = ModelConfig(init="gaussian", gain=3.0, hidden_size=32, seq_len=200)
    rnn, _ = build_model(cfg)
    x = build_task(cfg).x[:, 0]
    L = jacobian_log_norms(rnn, x, norm="fro")
    lam = lyapunov_exponents(rnn, x, n_exponents=1)[0] / math.log(10)
    assert lam > 0.02  # chaotic
    # ||dh_T/dh_1|| is within a bounded factor of prod |R_ii| over the same steps: the factor
    # (alignment, Frobenius vs spectral) fades as 1 / T
    assert L[-1, 0] / (cfg.seq_len - 1) == pytest.approx(lam, rel=0.1)


def test_lyapunov_refuses_bad_settings():
    m = elman_with(torch.eye(3))
    x = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="n_exponents must be in"):
        lyapunov_exponents(m, x, n_exponents=4)
    with pytest.raises(ValueError, match="n_exponents must be in"):
        lyapunov_exponents(m, x, n_exponents=0)
    with pytest.raises(ValueError, match="burn_in must be in"):
        lyapunov_exponents(m, x, burn_in=10)
    with pytest.raises(ValueError, match="x must have shape"):
        lyapunov_exponents(m, torch.zeros(10, 5))


# == Hypothesis: spectra are finite over the settings space ==================================================


@settings(PROFILE, max_examples=80)
@given(valid_small_configs())
def test_spectrum_is_finite(cfg):
    built = only_value_errors(build_model, cfg)
    if built is None:
        return
    sp = spectrum(built[0])
    H = 2 * cfg.hidden_size if cfg.cell == "lru" else cfg.hidden_size  # the LRU's real form (Re h, Im h)
    assert sp.eigenvalues.shape == (H,) and sp.singular_values.shape == (H,)
    assert np.isfinite(sp.eigenvalues).all() and np.isfinite(sp.singular_values).all()
    assert (sp.singular_values >= 0).all() and (np.diff(sp.singular_values) <= 1e-12 * (1 + sp.sigma1)).all()
    assert math.isfinite(sp.rho) and math.isfinite(sp.sigma1) and sp.rho <= sp.sigma1 * (1 + 1e-9) + 1e-12
    if cfg.spectral_radius > 0:  # the promise of the setting: exactly this rho (of each gate block)
        assert sp.rho == pytest.approx(cfg.spectral_radius, rel=1e-4)
