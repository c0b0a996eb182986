"""The matrix's summaries (bptt_core.flow.summary): the lag view and profile, the decay rate and the memory
horizon, on known matrices and on the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt_core import decay_rate, jacobian_log_norms, lag_profile, lag_view, memory_horizon
from tests.helpers.jacobians import active_relu


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
