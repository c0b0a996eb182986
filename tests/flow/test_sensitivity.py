"""Zucchet & Orvieto's sensitivity to lambda (bptt_core.flow.sensitivity): it grows near the unit circle
while the Jacobian does not, equals a finite difference of the LRU itself, and refuses bad radii and sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt_core.flow.sensitivity import lambda_sensitivity


def test_sensitivity_to_lambda_grows_as_it_nears_the_circle_while_the_jacobian_does_not(curve):
    assert np.all(np.diff(curve.measured) > 0)  # monotone in |lambda|
    assert curve.measured[-1] / curve.measured[0] > 1000  # three decades between r = 0.5 and 0.999
    assert np.all(curve.jacobian_log10 <= 0)  # ||dh_T/dh_1|| = |lambda|^(T-1) <= 1: nothing explodes
    assert np.all((curve.state_ms > 0.2) & (curve.state_ms < 5))  # the normalised forward stays O(1)
    # the Monte Carlo mean against the exact expectation: 64 sequences x 6 units, ~15% for chi-square-like spread
    np.testing.assert_allclose(curve.measured, curve.theory, rtol=0.3)


def test_sensitivity_matches_a_finite_difference_of_the_lru_itself():
    """The forward-mode derivative against (h_T(r + eps) - h_T(r - eps)) / 2 eps of the module's own run."""
    from bptt_core import LRU

    r, T, eps = 0.97, 60, 1e-6
    x = torch.randn(T, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def h_T(radius):
        torch.manual_seed(0)
        m = LRU(3, 2).double()
        with torch.no_grad():
            m.nu_log.fill_(math.log(-math.log(radius)))
            m.gamma_log.fill_(0.5 * math.log1p(-(r**2)))  # gamma held at r's value: only lambda moves
        return m(x)[1][0]  # (3, 4)

    fd = (h_T(r + eps) - h_T(r - eps)) / (2 * eps)
    fd_ms = (fd**2).sum(1).mean().item() / 2  # mean over sequences and the 2 units of |dh/dr|^2
    from bptt_core.flow.sensitivity import _measure

    measured, _, _ = _measure(r, x, 2, 3, 0)
    assert measured == pytest.approx(fd_ms, rel=1e-6)


def test_sensitivity_refuses_bad_radii_and_sizes():
    for radii, words in [
        ((), "non-empty"),
        ((1.0,), "radii must be"),
        ((0.0,), "radius must be in"),
        ((1.5,), "radius"),
    ]:
        with pytest.raises(ValueError, match=words):
            lambda_sensitivity(radii=radii)
    with pytest.raises(ValueError, match="exceeds"):
        lambda_sensitivity(seq_len=10_000, n_sequences=10_000)
