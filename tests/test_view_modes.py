"""Slide mode (one figure, every control hidden, reachable by URL), controls hidden, lecture type; no emoji
in the interface text (Debian's Chromium has no emoji font: they render as empty boxes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_app import PAGES, chart_keys, chart_spec, navigation_mode, open_page  # noqa: F401 - the fixture applies here too

from dashboard import layout, page_table

ROOT = Path(__file__).resolve().parents[1]


# the settings under which a figure is drawn at all (a stack's depth picture, the LRU's sensitivity,
# a clicked cell's chain, compare mode)
NEEDS = {
    "gf_depth": {"m_cell": "lstm", "m_layers": "2", "m_hidden": "8"},
    "sp_lambda": {"m_cell": "lru", "m_hidden": "8"},
    **{k: {"gf_cell": "6,2"} for k in ("gf_unroll", "gf_unroll_sv", "gf_unroll_sat", "gf_unroll_nonnormal",
                                       "gf_unroll_contrib")},
    **{k: {"compare": "true"} for k in ("gf_cmp_a", "gf_cmp_b", "gf_cmp_ratio", "sp_cmp_eig", "sp_cmp_sv",
                                         "sp_cmp_lyap")},
    **{f"gf_play_{k}": {"gf_play": "true", "gf_play_steps": "10", "m_hidden": "6", "m_seq_len": "12"}
       for k in ("heatmap", "dh", "eig", "sv", "lyap")},
}  # fmt: skip


@pytest.mark.parametrize(
    "page, figure", [(p, f) for p in ("gradient_flow", "spectrum") for f in page_table.page(p).figures]
)
def test_slide_mode_draws_only_its_figure_full_height(page, figure):
    at = open_page(page, query={"slide": figure, **NEEDS.get(figure, {})})
    assert not at.exception
    assert chart_keys(at) == {figure}
    (chart,) = at.get("plotly_chart")
    assert f'"height": {layout.SLIDE_HEIGHT}' in chart.proto.spec.replace(":", ": ").replace(":  ", ": ")
    assert not at.get("download_button"), "no export on a slide"


def test_a_slide_of_another_page_says_so():
    at = open_page("spectrum", query={"slide": "gf_heatmap"})
    assert not at.exception
    assert any("not a figure of this page" in w.value for w in at.warning)


def test_the_css_hides_every_control_and_keeps_the_slide():
    css = layout.view_css(lecture=False, controls=False, slide=None)
    for control in layout.CONTROLS:
        assert f'[data-testid="{control}"]' in css
    assert "stSidebar" in css and ".st-key-exports" in css
    slide = layout.view_css(lecture=False, controls=False, slide="sp_eig")
    assert ":not(.st-key-sp_eig)" in slide and "stHeader" in slide
    lecture = layout.view_css(lecture=True, controls=True, slide=None)
    for text in ('[data-testid="stTable"] td', '[data-baseweb="select"]', "stWidgetLabel"):
        assert text in lecture


EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")


def test_no_emoji_in_the_interface_text():
    """⚠️, ℹ️ and 💥 render as empty boxes here; the interface uses Material icons instead."""
    found = []
    for folder in ("pages", "dashboard", "bptt_core"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if EMOJI.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not found, "\n".join(found)


def test_the_k_sliders_end_at_the_sequence_length():
    at = open_page("truncation", query={"m_seq_len": "30"})
    assert not at.exception
    assert {s.key: s.max for s in at.slider if s.key in ("tb_k1", "tb_k2")} == {"tb_k1": 30, "tb_k2": 30}
    at = open_page("truncation", query={"m_seq_len": "30", "tb_k1": "45"})
    assert any("tb_k1" in w.value and "[1, 30]" in w.value for w in at.warning)


def test_a_stale_lstm_block_leaves_with_the_lstm():
    at = open_page("gradient_flow", query={"m_cell": "rnn", "gf_block": "c"})
    assert not at.exception
    assert at.session_state["gf_block"] == "h"
    assert "∂h(t)/∂h(s)" in chart_spec(at, "gf_heatmap")["layout"]["title"]["text"]


def test_a_refused_flag_names_its_default_as_the_url_spells_it():
    at = open_page("overview", query={"lecture": "maybe"})
    texts = [w.value for w in at.warning]
    assert any("default false" in t for t in texts) and not any("False" in t for t in texts), texts
