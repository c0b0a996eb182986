"""The Truncated BPTT page (pages/truncation.py) in AppTest: the library's numbers, the k sliders, compare
heatmaps, and its player trained by TBPTT."""

from __future__ import annotations

import numpy as np

from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig, train
from dashboard import player_ui
from tests.helpers.apptest import (
    assert_ok,
    chart_spec,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    z_of,
)
from tests.helpers.compare_pages import OTHER_B, metrics, open_cmp
from tests.helpers.player_pages import PLAYERS, frame_titles


def test_truncation_numbers_come_from_the_library():
    from bptt_core.learning.truncation import tbptt_schedule

    at = open_page("truncation", {"m_seq_len": "23", "tb_k1": "5", "tb_k2": "3"})
    assert_ok(at, "truncation")
    shown = {m.label: m.value for m in at.metric}
    assert shown["Updates per sequence"] == str(len(tbptt_schedule(23, 5, 3))) == "5"


# == The k sliders ===========================================================================================


def test_the_k_sliders_end_at_the_sequence_length():
    at = open_page("truncation", query={"m_seq_len": "30"})
    assert not at.exception
    assert {s.key: s.max for s in at.slider if s.key in ("tb_k1", "tb_k2")} == {"tb_k1": 30, "tb_k2": 30}
    at = open_page("truncation", query={"m_seq_len": "30", "tb_k1": "45"})
    assert any("tb_k1" in w.value and "[1, 30]" in w.value for w in at.warning)


# == Its player trains by TBPTT ==============================================================================


def test_the_truncated_run_is_trained_by_tbptt_not_full_bptt():
    """The TBPTT page's run differs from the full-BPTT run of the same settings (its frames' losses)."""
    query, prefix = PLAYERS["truncation"]
    at = open_page("truncation", query)
    titles = frame_titles(chart_spec(at, f"{prefix}_heatmap"))
    full = train(ModelConfig(hidden_size=6, seq_len=12), TrainConfig(steps=10, lr=player_ui.PLAY_LR_DEFAULT))
    last = full.snapshots[-1]
    assert f"loss {last.loss:.4g}" not in titles[-1]


# == Compare mode: one colour range ==========================================================================


def test_truncation_heatmaps_share_one_colour_range_covering_both():
    at = open_cmp("truncation", OTHER_B)
    a, b = (chart_spec(at, k)["data"][0] for k in ("tb_cmp_a", "tb_cmp_b"))
    assert a["zmin"] == b["zmin"] and a["zmax"] == b["zmax"]
    za, zb = z_of(at, "tb_cmp_a"), z_of(at, "tb_cmp_b")
    both = np.concatenate([za[np.isfinite(za)], zb[np.isfinite(zb)]])
    assert a["zmin"] <= both.min() and a["zmax"] >= both.max()
    assert np.abs(za[np.isfinite(za)] - zb[np.isfinite(zb)]).max() > 0.1  # B really differs
    df = metrics(at).set_index("metric")
    assert df.loc["pairs (t, s) dropped (fraction)", "B − A"] == 0  # same T, k1, k2: the same pairs
    assert df.loc["largest dropped log10 ‖∂h(t)/∂h(s)‖", "B − A"] != 0
