"""The Gram-split Frobenius engine: its plan covers every pair once, it agrees with explicitly formed
products over a huge dynamic range, and its certificate catches the cancellation the trace identity
suffers when a product is much smaller than its factors (checked against exact rational arithmetic).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from bptt_core.flow import frobenius
from bptt_core.flow.jacobians import log_norm_products

PLAN_GRID = [(T, leaf) for T in (*range(1, 40), 63, 64, 65, 100, 257) for leaf in (0, 1, 2, 8, 16)]


@pytest.mark.parametrize("T,leaf", PLAN_GRID)
def test_split_plan_covers_every_pair_exactly_once(T, leaf):
    levels, leaves = frobenius.split_plan(T, leaf)
    seen = np.zeros((T, T), dtype=int)
    for level in levels:
        for lo, m, hi in level:
            assert lo <= m <= hi
            s, t = np.meshgrid(np.arange(lo, m + 1), np.arange(m, hi + 1), indexing="ij")
            keep = s < t
            np.add.at(seen, (t[keep], s[keep]), 1)
    for lo, hi in leaves:
        assert hi - lo < max(leaf, 1)
        t, s = np.tril_indices(hi - lo + 1, -1)
        np.add.at(seen, (t + lo, s + lo), 1)
    np.testing.assert_array_equal(seen, np.tril(np.ones((T, T), dtype=int), -1))


def formed_products_reference(J: torch.Tensor, block: slice) -> np.ndarray:
    """log10 ||(J_t ... J_{s+1})[block, block]||_F by forming every product in float64, renormalised."""
    T, S, _ = J.shape
    ref = np.full((T, T), np.nan)
    for t in range(T):
        P, log = torch.eye(S, dtype=torch.float64), 0.0
        ref[t, t] = 0.5 * math.log10(len(range(S)[block]))
        for s in range(t - 1, -1, -1):  # P = J_t ... J_{s+1}
            P = P @ J[s + 1]
            f = torch.linalg.matrix_norm(P).item()
            P, log = P / f, log + math.log10(f)
            ref[t, s] = log + math.log10(torch.linalg.matrix_norm(P[block, block]).item())
    return ref


@pytest.mark.parametrize("leaf", [0, 1, 8])
@pytest.mark.parametrize("block", [slice(0, 6), slice(0, 3), slice(3, 6)], ids=["whole", "top", "bottom"])
def test_split_matches_formed_products_over_a_huge_range(monkeypatch, leaf, block):
    """Random chains whose products sink to ~1e-150 and climb back, steps jumping by 1e+-8."""
    monkeypatch.setattr(frobenius, "LEAF", leaf)
    gen = torch.Generator().manual_seed(0)
    T, S = 90, 6
    drift = torch.where(torch.arange(T) < T // 2, -2.5, 2.5).to(torch.float64)
    scales = 10 ** (drift + 2 * torch.randn(T, generator=gen, dtype=torch.float64))
    J = torch.randn(T, S, S, generator=gen, dtype=torch.float64) * scales[:, None, None]
    L = log_norm_products(J, "fro", block, method="split")
    ref = formed_products_reference(J, block)
    assert np.nanmax(np.abs(L)) > 100  # the range really is beyond float32 and more
    np.testing.assert_array_equal(np.isnan(L), np.isnan(ref))
    np.testing.assert_allclose(L[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-10)


def test_split_gives_minus_inf_for_an_exactly_zero_step(monkeypatch):
    monkeypatch.setattr(frobenius, "LEAF", 1)
    T, S = 12, 3
    J = torch.randn(T, S, S, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    J[5] = 0
    L = log_norm_products(J, "fro", method="split")
    for t in range(T):
        for s in range(t):
            assert (L[t, s] == -np.inf) == (s < 5 <= t)
    assert np.isfinite(L[np.tril_indices(T)][~np.isneginf(L[np.tril_indices(T)])]).all()


def nearly_orthogonal_factors(eps: float):
    """X_t, X_s (3 each, 6 x 6, unit norm) whose products X_t X_s^T are ~eps: X_t lives in the first
    three coordinates and X_s in the last three, each with an eps-sized leak into the other half,
    then both are rotated alike so that the Gram matrices' entries are all O(1) and must cancel."""
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(2, 3, 6, 6, generator=gen, dtype=torch.float64)
    X[0, :, :, 3:] *= eps
    X[1, :, :, :3] *= eps
    X = X @ torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))[0]
    X /= torch.linalg.matrix_norm(X)[..., None, None]
    return X[0], X[1]


def exact_squared_norm(A: torch.Tensor, B: torch.Tensor) -> float:
    """||A B^T||_F^2 in exact rational arithmetic from the float64 entries."""
    a = [[Fraction(v) for v in row] for row in A.tolist()]
    b = [[Fraction(v) for v in row] for row in B.tolist()]
    return float(sum(sum(x * y for x, y in zip(ra, rb, strict=True)) ** 2 for ra in a for rb in b))


def test_certificate_recomputes_the_pairs_the_gram_identity_cannot_resolve():
    Xt, Xs = nearly_orthogonal_factors(eps=2.0**-26)
    Gt, Gs = Xt.mT @ Xt, Xs.mT @ Xs
    exact = torch.tensor([[exact_squared_norm(a, b) for b in Xs] for a in Xt], dtype=torch.float64)
    assert exact.max() < 1e-13  # the products really are ~1e-8 of their unit-norm factors
    gram_only = frobenius.row_summed_inner_products(Gt, Gs)
    assert ((gram_only - exact).abs() / exact).max() > 1e-4  # the identity alone is visibly wrong here
    certified = frobenius.certified_squared_norms(Xt, Xs, Gt, Gs, rtol=frobenius.RTOL)
    # Those pairs are the explicit products, as accurate as forming them can be (~S u / 1e-8 here).
    formed = torch.linalg.matrix_norm(Xt[:, None] @ Xs[None].mT) ** 2  # (3, 3)
    np.testing.assert_allclose(certified.numpy(), formed.numpy(), rtol=1e-14, atol=0)
    np.testing.assert_allclose(certified.numpy(), exact.numpy(), rtol=1e-7, atol=0)


def test_certificate_keeps_well_conditioned_pairs_from_the_gram_identity(monkeypatch):
    """Where the bound certifies the identity's value, no product is formed (and it is accurate)."""
    Xt, Xs = nearly_orthogonal_factors(eps=1.0)
    formed = []
    monkeypatch.setattr(frobenius, "fro", lambda M: formed.append(M.shape) or torch.linalg.matrix_norm(M))
    v = frobenius.certified_squared_norms(Xt, Xs, Xt.mT @ Xt, Xs.mT @ Xs, rtol=frobenius.RTOL)
    assert formed == []  # no explicit product was needed
    exact = torch.tensor([[exact_squared_norm(a, b) for b in Xs] for a in Xt], dtype=torch.float64)
    np.testing.assert_allclose(v.numpy(), exact.numpy(), rtol=1e-13, atol=0)


def test_split_and_chain_agree_where_the_default_switches():
    """H = 64, T = 250: the default is the split; the float64 chain is the independent reference."""
    gen = torch.Generator().manual_seed(4)
    T, S = 250, 64
    W = torch.linalg.qr(torch.randn(S, S, generator=gen, dtype=torch.float64))[0]
    d = 1 - torch.rand(T, S, 1, generator=gen, dtype=torch.float64) * 0.2  # tanh-like slopes in (0.8, 1]
    J = d * W  # (T, S, S): diag(d_t) W
    L = log_norm_products(J.clone(), "fro")
    ref = log_norm_products(J, "fro", dtype=torch.float64, method="chain")
    np.testing.assert_allclose(L[np.tril_indices(T)], ref[np.tril_indices(T)], rtol=0, atol=1e-10)


def test_overwrite_is_only_taken_when_asked():
    J = torch.randn(40, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    before = J.clone()
    L = log_norm_products(J, "fro", method="split")
    assert torch.equal(J, before)
    np.testing.assert_array_equal(log_norm_products(J, "fro", method="split", overwrite=True), L)


def test_split_refuses_the_spectral_norm():
    with pytest.raises(ValueError, match="method"):
        log_norm_products(torch.eye(3).repeat(4, 1, 1), 2, method="split")


def test_split_rescues_products_that_sink_below_float64s_range(monkeypatch):
    """J_t = c_t Q_t with Q_t orthogonal: ||J_t ... J_{s+1}||_F = sqrt(S) prod c exactly, while the
    normalised factors Q_t / sqrt(S) make the running products shrink by 1/sqrt(S) a step, to
    1e-180 over the top level's 300 steps: far below where float64 underflows unless rescued."""
    gen = torch.Generator().manual_seed(6)
    T, S = 600, 16
    Q = torch.linalg.qr(torch.randn(T, S, S, generator=gen, dtype=torch.float64))[0]
    log_c = torch.randn(T, generator=gen, dtype=torch.float64)
    J = Q * (10**log_c)[:, None, None]
    rescued = []
    real = frobenius.rescue_from_underflow_
    monkeypatch.setattr(frobenius, "rescue_from_underflow_", lambda *a: rescued.append(real(*a)) or rescued[-1])
    L = log_norm_products(J, "fro", method="split")
    assert any(rescued)
    cum = np.concatenate([[0.0], np.cumsum(log_c.numpy())])
    t, s = np.tril_indices(T, -1)
    np.testing.assert_allclose(L[t, s], 0.5 * math.log10(S) + cum[t + 1] - cum[s + 1], rtol=0, atol=1e-9)
