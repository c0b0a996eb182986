"""Compare mode's difference views: exactly zero when B equals A, one colour range covering both."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bptt_core.config import ModelConfig
from bptt_core.figures import ranges
from bptt_core.figures.compare import (
    compare_eigenvalue_figure,
    compare_heatmaps,
    compare_history_figure,
    log_ratio_figure,
)
from bptt_core.figures.heatmaps import gradient_flow_heatmap
from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.flow.spectra import spectrum
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.learning.training import TrainConfig, train
from bptt_core.models.build import build_model, build_task
from bptt_core.report import compare

SMALL = dict(seq_len=8, hidden_size=5)

# (A, B) pairs a lecturer compares: activations, initialisations, cells
PAIRS = [
    (ModelConfig(activation="tanh", **SMALL), ModelConfig(activation="relu", **SMALL)),
    (ModelConfig(init="orthogonal", **SMALL), ModelConfig(init="gaussian", gain=1.5, **SMALL)),
    (ModelConfig(cell="rnn", **SMALL), ModelConfig(cell="lstm", **SMALL)),
]


def _analysis(cfg: ModelConfig) -> tuple[np.ndarray, dict, np.ndarray]:
    rnn, _ = build_model(cfg)
    x = build_task(cfg).x[:, 0]
    L = jacobian_log_norms(rnn, x)
    sp = spectrum(rnn)
    metrics = dict(decay_rate=decay_rate(L), memory_horizon=memory_horizon(L), rho=sp.rho, sigma1=sp.sigma1)
    return L, metrics, sp.eigenvalues


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


def test_shared_range_of_flat_or_empty_matrices_is_a_usable_range():
    assert ranges.shared_range(np.zeros((2, 2)), np.zeros((3, 3))) == (-0.5, 0.5)
    assert ranges.shared_range(np.full((2, 2), np.nan)) == (-0.5, 0.5)
    with pytest.raises(ValueError, match="at least one"):
        ranges.shared_range()


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


def test_zrange_is_validated():
    L = np.zeros((2, 2))
    with pytest.raises(ValueError, match="zrange"):
        gradient_flow_heatmap(L, zrange=(1.0, 1.0))
    with pytest.raises(ValueError, match="zrange"):
        gradient_flow_heatmap(L, zrange=(0.0, float("inf")))


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


# -- compare mode on Spectrum, Truncated BPTT and Clipping ------------------------------------------------


def _spectra(cfg: ModelConfig):
    from bptt_core.analyses.numbers import lyapunov_of, spectrum_of

    return spectrum_of(cfg), lyapunov_of(cfg)


@pytest.mark.parametrize("a, b", PAIRS, ids=["tanh-relu", "orthogonal-gaussian", "rnn-lstm"])
def test_spectrum_compare_is_zero_for_a_copy_and_b_minus_a_otherwise(a, b):
    from bptt_core.report import panels

    spec_a, lam_a = _spectra(a)
    table, figs = panels.compare_spectrum_panels(spec_a, lam_a, *_spectra(a))
    assert (table["B − A"] == 0.0).all() and len(table) == 4
    for p in figs:
        named = [tr for tr in p.figure.data if (tr.name or "")[:2] in ("A:", "B:")]
        assert len(named) == 2
        np.testing.assert_array_equal(named[0].y, named[1].y)
    spec_b, lam_b = _spectra(b)
    table, (eig, sv, lyap) = panels.compare_spectrum_panels(spec_a, lam_a, spec_b, lam_b)
    m = table.set_index("metric")
    assert m.loc["spectral radius ρ", "B"] == spec_b.rho and m.loc["γσ₁ (Pascanu)", "A"] == spec_a.gamma * spec_a.sigma1
    np.testing.assert_array_equal(table["B − A"], table["B"] - table["A"])
    assert (table["B − A"] != 0).any()
    r = eig.figure.layout.xaxis.range[1]  # one plane: its range covers both models' eigenvalues
    assert r >= max(np.abs(spec_a.eigenvalues).max(), np.abs(spec_b.eigenvalues).max())
    lo, hi = lyap.figure.layout.yaxis.range
    both = np.concatenate([lam_a, lam_b])
    both = both[np.isfinite(both)]
    assert lo <= min(both.min(), 0) and hi >= max(both.max(), 0)
    assert sv.figure.layout.yaxis.range[1] >= max(spec_a.sigma1, spec_b.sigma1, 1 / spec_a.gamma, 1 / spec_b.gamma)


def test_truncation_compare_shares_one_colour_range_and_is_zero_for_a_copy():
    from bptt_core.report import panels

    L_a, _, _ = _analysis(PAIRS[1][0])
    L_b, _, _ = _analysis(PAIRS[1][1])
    table, (ha, hb) = panels.compare_truncation_panels(L_a, L_a.copy(), 3, 2)
    assert (table["B − A"] == 0.0).all()
    np.testing.assert_array_equal(ha.figure.data[0].z, hb.figure.data[0].z)
    table, (ha, hb) = panels.compare_truncation_panels(L_a, L_b, 3, 2)
    za, zb = ha.figure.data[0], hb.figure.data[0]
    assert (za.zmin, za.zmax) == (zb.zmin, zb.zmax) == ranges.shared_range(L_a, L_b)
    one = panels.truncation_figure(L_b, 3, 2)
    m = table.set_index("metric")
    assert m.loc["largest dropped log10 ‖∂h(t)/∂h(s)‖", "B"] == one.largest_dropped
    assert m.loc["pairs (t, s) dropped (fraction)", "B − A"] == 0.0  # the same T, k1, k2: the same pairs


def _twins(cfg: ModelConfig, tcfg):
    from bptt_core.learning.training import twin_runs

    return {k: dict(history=r.history, diverged_at=r.diverged_at, first_clip=r.first_clip)
            for k, r in twin_runs(cfg, tcfg).items()}  # fmt: skip


def test_clipping_compare_is_zero_for_a_copy_and_counts_the_clips():
    from bptt_core.report import panels

    tcfg = TrainConfig(steps=6, batch_size=2, clip_threshold=0.05, snapshots=0)
    runs_a = _twins(PAIRS[0][0], tcfg)
    table, (hist,) = panels.compare_clipping_panels(runs_a, _twins(PAIRS[0][0], tcfg), "norm")
    defined = table["A"].notna()
    assert (table.loc[defined, "B − A"] == 0.0).all() and table.loc[~defined, "B"].isna().all()
    assert set(table["run"]) == {"unclipped", "norm", "value"}
    assert (hist.data["log10 B/A"] == 0.0).all() and len(hist.data) == 6
    runs_b = _twins(PAIRS[0][1], tcfg)
    table = panels.compare_clipping_panels(runs_a, runs_b, "norm")[0]
    row = table[(table["run"] == "norm") & (table["metric"] == "clip count")].iloc[0]
    assert row["A"] == runs_a["norm"]["history"]["clipped"].sum() > 0  # c = 0.05 clips
    assert row["B"] == runs_b["norm"]["history"]["clipped"].sum()


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


def test_report_compare_section_is_zero_for_a_copy_and_names_B():
    from bptt_core.report.html import build_report, compare_sections_of

    cfg = ModelConfig(**SMALL)
    tcfg = TrainConfig(steps=4, batch_size=2, snapshots=0)
    from bptt_core.learning.training import twin_runs

    runs_a = twin_runs(cfg, tcfg)
    figs, tables = compare_sections_of(cfg, None, cfg, None, "fro", "h", 1e-3, (3, 2), tcfg, runs_a, False)
    assert len(tables) == 4 and len(figs) == 3 + 3 + 2 + 3
    for title, t in tables:
        defined = t["A"].notna()
        assert (t.loc[defined, "B − A"] == 0.0).all(), title
        assert t.loc[~defined, "B"].isna().all(), title
    html = build_report(cfg, compare_cfg=ModelConfig(**{**SMALL, "cell": "gru"}))
    assert "Compare: A against B" in html and "&quot;B&quot;: {" in html
    with pytest.raises(ValueError, match="model B"):
        build_report(cfg, compare_cfg=ModelConfig(seq_len=5, task="temporal_order"))
    with pytest.raises(ValueError, match="compare_cfg"):
        build_report(cfg, compare_cfg={"cell": "rnn"})
