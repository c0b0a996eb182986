"""One range for pictures drawn side by side: a shared colour scale for two heatmaps, a symmetric one
for a difference (0 in the middle), one axis for two series. Exact at any magnitude: only finite
values count, and a flat range is widened so its colour bar still says something."""

from __future__ import annotations

import numpy as np


def shared_range(*matrices) -> tuple[float, float]:
    """(zmin, zmax) covering every finite value of all the matrices: one colour scale for all of them.

    Widened by 0.5 on each side when all values are equal (a flat colour bar says nothing), (-0.5, 0.5)
    when there is no finite value at all.
    """
    if not matrices:
        raise ValueError("shared_range needs at least one matrix")
    vals = [np.asarray(m, dtype=float) for m in matrices]
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in vals])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def symmetric_range(D) -> tuple[float, float]:
    """(-m, m) covering every finite value of a difference, so that 0 (no change) is the middle."""
    D = np.asarray(D, dtype=float)
    finite = D[np.isfinite(D)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    m = m if m > 0 else 0.5
    return -m, m


def axis_range(*arrays, pad: float = 0.05) -> tuple[float, float]:
    """(lo, hi) covering every finite value of all the arrays, padded by ``pad`` of the span on each
    side: one axis range for two pictures drawn side by side (or two series on one axis)."""
    lo, hi = shared_range(*[np.atleast_1d(np.asarray(a, dtype=float)) for a in arrays])
    span = hi - lo
    return lo - pad * span, hi + pad * span
