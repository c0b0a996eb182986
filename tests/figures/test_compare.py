"""Compare figures (bptt_core.figures.compare): A's and B's heatmaps share one colour range covering both,
and every compare figure serialises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt_core.figures import ranges
from bptt_core.figures.compare import compare_eigenvalue_figure, compare_heatmaps, log_ratio_figure
from bptt_core.report import compare
from tests.helpers.compare import PAIRS, _analysis


@pytest.mark.parametrize("a, b", PAIRS, ids=["tanh-relu", "orthogonal-gaussian", "rnn-lstm"])
def test_shared_colour_range_covers_both_and_the_ratio_is_b_minus_a(a, b):
    L_a, m_a, ev_a = _analysis(a)
    L_b, m_b, ev_b = _analysis(b)
    lo, hi = ranges.shared_range(L_a, L_b)
    for L in (L_a, L_b):
        fin = L[np.isfinite(L)]
        assert lo <= fin.min() and fin.max() <= hi
    both = np.concatenate([L_a[np.isfinite(L_a)], L_b[np.isfinite(L_b)]])
    assert (lo, hi) == (both.min(), both.max())  # no wider than needed
    fa, fb = compare_heatmaps(L_a, L_b)
    assert (fa.data[0].zmin, fa.data[0].zmax) == (fb.data[0].zmin, fb.data[0].zmax) == (lo, hi)
    assert fa.layout.title.text.startswith("A:") and fb.layout.title.text.startswith("B:")
    D = compare.log_ratio(L_a, L_b)
    lower = np.tril(np.ones_like(D, dtype=bool))
    np.testing.assert_array_equal(D[lower], (L_b - L_a)[lower])
    assert np.abs(D[lower]).max() > 0  # these settings do differ
    table = compare.metrics_table(m_a, m_b)
    for _, row in table.iterrows():
        if math.isfinite(row["A"]) and math.isfinite(row["B"]):
            assert row["B − A"] == row["B"] - row["A"]
    lo_d, hi_d = ranges.symmetric_range(D)
    assert lo_d == -hi_d and hi_d == np.abs(D[lower]).max()


def test_compare_figures_serialise():
    torch.manual_seed(0)
    L_a, _, ev_a = _analysis(PAIRS[0][0])
    L_b, _, ev_b = _analysis(PAIRS[0][1])
    for f in (
        *compare_heatmaps(L_a, L_b),
        log_ratio_figure(compare.log_ratio(L_a, L_b)),
        compare_eigenvalue_figure(ev_a, ev_b),
    ):
        f.to_json()
