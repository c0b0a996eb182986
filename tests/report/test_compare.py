"""Compare mode's numbers (bptt_core.report.compare): exactly zero when B equals A, B − A otherwise, on the
steps both have, with infinities kept and bad matrices refused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bptt_core.figures import ranges
from bptt_core.figures.compare import compare_eigenvalue_figure, compare_history_figure, log_ratio_figure
from bptt_core.learning.training import TrainConfig, train
from bptt_core.report import compare
from tests.helpers.compare import PAIRS, _analysis


def _with_exact_zeros(L: np.ndarray) -> np.ndarray:
    L = L.copy()
    L[3, 0] = -np.inf  # an exactly-zero product (every ReLU unit off) and an overflow
    L[4, 1] = np.inf
    return L


@pytest.mark.parametrize("cfg", [p[0] for p in PAIRS] + [PAIRS[2][1]], ids=["tanh", "orthogonal", "rnn", "lstm"])
def test_b_equal_to_a_gives_exactly_zero_differences(cfg):
    L, metrics, ev = _analysis(cfg)
    L_b, metrics_b, ev_b = _analysis(cfg)  # B starts as a copy of A
    for La, Lb in ((L, L_b), (_with_exact_zeros(L), _with_exact_zeros(L_b))):
        D = compare.log_ratio(La, Lb)
        lower = np.tril(np.ones_like(D, dtype=bool))
        assert (D[lower] == 0.0).all()  # exactly zero, including where both are -inf or +inf
        assert np.isnan(D[~lower]).all()  # s > t does not exist on either side
    table = compare.metrics_table(metrics, metrics_b)
    assert table["metric"].tolist() == list(metrics)
    defined = table["A"].notna()
    assert (table.loc[defined, "B − A"] == 0.0).all()
    np.testing.assert_array_equal(table["A"], table["B"])
    r = train(cfg, TrainConfig(steps=3, batch_size=2, snapshots=0))
    hd = compare.history_difference(r.history, r.history)
    assert (hd["log10 B/A"] == 0.0).all() and len(hd) == 3
    fig = log_ratio_figure(compare.log_ratio(L, L_b))
    z = np.asarray(fig.data[0].z, dtype=float)
    assert (z[np.isfinite(z)] == 0).all()
    ev_fig = compare_eigenvalue_figure(ev, ev_b)
    np.testing.assert_array_equal(ev_fig.data[1].x, ev_fig.data[2].x)
    hist_fig = compare_history_figure(r.history, r.history)
    np.testing.assert_array_equal(hist_fig.data[0].y, hist_fig.data[1].y)


def test_log_ratio_uses_the_common_steps():
    L_a = np.tril(np.random.default_rng(0).normal(size=(6, 6)))
    L_a[np.triu_indices(6, 1)] = np.nan
    L_b = np.tril(np.random.default_rng(1).normal(size=(9, 9)))
    L_b[np.triu_indices(9, 1)] = np.nan
    assert compare.common_steps(L_a, L_b) == 6
    D = compare.log_ratio(L_a, L_b)
    assert D.shape == (6, 6)
    np.testing.assert_array_equal(np.tril(D), np.tril(L_b[:6, :6] - L_a))


def test_one_sided_zero_is_an_infinite_ratio_not_nan():
    L = np.array([[0.0, np.nan], [-2.0, 0.0]])
    M = np.array([[0.0, np.nan], [-np.inf, 0.0]])
    D = compare.log_ratio(L, M)
    assert D[1, 0] == -np.inf and D[0, 0] == 0.0 and np.isnan(D[0, 1])


def test_history_difference_keeps_only_steps_both_ran():
    a = pd.DataFrame({"step": [0, 1, 2, 3], "grad_norm": [1.0, 10.0, 100.0, 1000.0]})
    b = pd.DataFrame({"step": [0, 1, 2], "grad_norm": [1.0, 1.0, np.inf]})  # B stopped (diverged) at step 2
    hd = compare.history_difference(a, b)
    assert hd["step"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(hd["log10 B/A"], [0.0, -1.0, np.inf])
    with pytest.raises(ValueError, match="hist_b"):
        compare.history_difference(a, b.drop(columns="grad_norm"))


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 3)), np.zeros((0, 0))])
def test_bad_matrices_are_refused_naming_the_argument(bad):
    with pytest.raises(ValueError, match="L_b must be a square"):
        compare.log_ratio(np.zeros((2, 2)), bad)


def test_metrics_table_reads_none_as_missing():
    t = compare.metrics_table({"horizon": None, "rho": 0.9}, {"horizon": 5, "rho": 1.2, "only_b": 1})
    assert t["metric"].tolist() == ["horizon", "rho"]
    assert math.isnan(t["B − A"][0]) and t["B − A"][1] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="metrics_a"):
        compare.metrics_table([1], {})


def test_twin_metrics_and_axis_range_refuse_and_cover():
    h = pd.DataFrame({"step": [0, 1], "loss": [2.0, 1.5], "clipped": [True, False]})
    assert compare.twin_metrics(h, None, 0) == {"divergence step": None, "first clip (step)": 0, "clip count": 1,
                                                "final loss": 1.5}  # fmt: skip
    with pytest.raises(ValueError, match="history"):
        compare.twin_metrics(h.drop(columns="clipped"), None, None)
    with pytest.raises(ValueError, match="share no twin"):
        compare.twins_metrics_table({"norm": {}}, {"value": {}})
    lo, hi = ranges.axis_range([1.0, np.inf], [-3.0, np.nan], pad=0.1)
    assert (lo, hi) == pytest.approx((-3.4, 1.4))
