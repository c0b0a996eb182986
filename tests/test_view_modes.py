"""Slide mode (one figure, every control hidden, reachable by URL), controls hidden, lecture type; no emoji
in the interface text (Debian's Chromium has no emoji font: they render as empty boxes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_app import PAGES, chart_keys, navigation_mode, open_page  # noqa: F401 - the fixture applies here too

from dashboard import layout, page_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "page, figure", [(p, f) for p in ("gradient_flow", "spectrum") for f in page_table.page(p).figures]
)
def test_slide_mode_draws_only_its_figure_full_height(page, figure):
    at = open_page(page, query={"slide": figure})
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
