"""What is read off a gradient-flow matrix L (plain numpy, no torch): the lag view, the lag profile, the
decay rate and the memory horizon, and the four numbers every page and the calculator state beside it
(with Pascanu et al.'s per-step bound gamma * sigma_1 for a vanilla RNN)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class FlowSummary:
    profile: np.ndarray  # (T,) mean log10 norm at lag k
    rate: float  # fitted log10 decay per step
    horizon: int | None  # first lag below threshold x lag 0
    threshold: float
    gamma_sigma1: float | None  # Pascanu's per-step bound (vanilla RNN only)


def flow_summary(L: np.ndarray, spec, cell: str, threshold: float = 1e-3) -> FlowSummary:
    gs = spec.gamma * spec.sigma1 if spec is not None and cell == "rnn" else None
    return FlowSummary(lag_profile(L), decay_rate(L), memory_horizon(L, threshold), threshold, gs)


def lag_view(L: np.ndarray) -> np.ndarray:
    """M[t, k] = L[t, t - k]: the same data indexed by lag k = t - s (NaN for k > t)."""
    T = L.shape[0]
    t, k = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    s = t - k
    M = np.full_like(L, np.nan)
    ok = s >= 0
    M[ok] = L[t[ok], s[ok]]
    return M


def lag_profile(L: np.ndarray) -> np.ndarray:
    """Mean over t of log10 ||d h_t / d h_{t-k}|| for each lag k (geometric mean of the norms)."""
    M = lag_view(L)
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(M), M, np.nan)
    counts = np.isfinite(finite).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.nansum(finite, 0) / counts
    prof[counts == 0] = np.nan
    return prof


def decay_rate(L: np.ndarray, max_lag: int | None = None) -> float:
    """Least-squares slope of the lag profile against lag k >= 1: log10 units per step.

    Negative: vanishing (10^rate per step); positive: exploding. NaN when fewer than two lags.
    """
    prof = lag_profile(L)
    k = np.arange(len(prof))
    use = (k >= 1) & np.isfinite(prof)
    if max_lag is not None:
        use &= k <= max_lag
    if use.sum() < 2:
        return float("nan")
    return float(np.polyfit(k[use], prof[use], 1)[0])


def memory_horizon(L: np.ndarray, threshold: float = 1e-3) -> int | None:
    """The first lag k where the norm drops below ``threshold`` times its lag-0 value, or None."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    prof = lag_profile(L)
    below = np.nonzero(prof - prof[0] < math.log10(threshold))[0]
    return int(below[0]) if len(below) else None
