"""The page frame (dashboard/layout.py): slide mode, hidden controls, lecture type, and the exports (figure
format, link, settings JSON, HTML report button), drawn only while their expander is open."""

from __future__ import annotations

import json

import pytest

from dashboard import layout, page_table
from dashboard.layout import EXPORTS_OPEN
from tests.helpers.apptest import (
    chart_keys,
    chart_spec,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
)

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


# == The lecture flag, hidden controls and the exports in the page ===========================================


def test_lecture_and_hidden_controls_flags():
    at = open_page("gradient_flow", {"lecture": "1", "controls": "0"})
    assert not at.exception
    assert at.session_state["lecture"] is True and at.session_state["controls"] is False
    spec = chart_spec(at, "gf_heatmap")
    assert spec["layout"]["font"]["size"] > 14  # the projector scale


def test_svg_export_toggle_switches_the_modebar_format():
    at = open_page("spectrum")
    assert json.loads(at.get("plotly_chart")[0].proto.config)["toImageButtonOptions"]["format"] == "png"
    at.session_state["spectrum_svg"] = True
    at.run()
    cfg = json.loads(at.get("plotly_chart")[0].proto.config)["toImageButtonOptions"]
    assert cfg["format"] == "svg" and cfg["scale"] == 3


def test_link_to_this_view_holds_the_settings():
    at = open_page("spectrum", {"m_hidden": "12", "m_cell": "gru"})
    link = [c.value for c in at.code if "http" in c.value][0]
    assert "m_hidden=12" in link and "m_cell=gru" in link and "spectrum" in link


@pytest.mark.parametrize("page", ["spectrum", "gradient_flow"])
def test_the_exports_are_drawn_only_while_their_expander_is_open(page):
    """Closed (the default), the exports send none of their elements; open, the JSON, the link and the
    report's button are there, and the page holds more elements."""
    at = open_page(page, state={EXPORTS_OPEN: False})
    closed = len(list(at.main))
    assert not at.code and not any(b.proto.label == "Settings (JSON)" for b in at.get("download_button"))
    assert f"{page}_report" not in [b.key for b in at.button]
    at.session_state[EXPORTS_OPEN] = True
    at.run()
    assert any("http" in c.value for c in at.code)
    assert any(b.proto.label == "Settings (JSON)" for b in at.get("download_button"))
    assert f"{page}_report" in [b.key for b in at.button]
    assert len(list(at.main)) > closed


def test_html_report_button():
    at = open_page("spectrum", {"m_hidden": "8", "m_seq_len": "12"})
    at.button(key="spectrum_report").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("report" in b.proto.label.lower() and "HTML" in b.proto.label for b in at.get("download_button"))
