"""The pages' panels (bptt_core.report.panels): compare panels share ranges and are zero for a copy, the
player's panels open at the active frame, the calculator's memory figure."""

from __future__ import annotations

import numpy as np
import pytest

from bptt_core.config import ModelConfig
from bptt_core.figures import ranges
from bptt_core.learning.player import frames
from bptt_core.learning.training import TrainConfig
from tests.helpers.compare import PAIRS, _analysis


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


# == The player's panels =====================================================================================


def test_player_panels_take_a_prefix_and_open_at_the_active_frame(clipped_run):
    from bptt_core.report.panels import player_panels

    fr = frames(clipped_run, n_lyapunov=2)
    panels = player_panels(fr, "test run", "tb_play", active=2)
    assert [p.key for p in panels] == [f"tb_play_{k}" for k in ("heatmap", "dh", "eig", "sv", "lyap")]
    for p in panels:
        assert p.figure.layout.sliders[0].active == 2
        assert f"training step {fr[2].step}" in p.figure.layout.title.text
    assert [p.key for p in player_panels(fr, "x")][0] == "cl_play_heatmap"  # the Clipping page's keys by default


# == The calculator's memory figure ==========================================================================


@pytest.mark.parametrize("cell", ["gru", "mingru"])
def test_memory_figure_draws_checkpointing_where_a_formula_exists(cell):
    from bptt_core.config import ModelConfig
    from bptt_core.learning.calculator import checkpoint_activation_bytes
    from bptt_core.report.panels import activation_memory_figure

    cfg = ModelConfig(cell=cell, hidden_size=8, seq_len=50)
    p = activation_memory_figure(cfg, 3, 2, 4, 1, 10)
    names = [t.name for t in p.figure.data]
    assert any("TBPTT window k = 10" in n for n in names)
    if cell == "mingru":  # measured, not drawn
        assert "checkpointing_bytes" not in p.data and not any("checkpointing" in n for n in names)
        return
    row = p.data.iloc[-1]
    assert row["checkpointing_bytes"] == checkpoint_activation_bytes(cell, 3, 8, 2, int(row["seq_len"]), 4, 1)
    assert row["checkpointing_bytes"] < row["full_bptt_bytes"]
    assert any("checkpointing" in n for n in names)
