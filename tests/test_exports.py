"""Exports that hold everything: the report from any page has every page's figures, files are named after
the view, and a saved view (the settings JSON) opens the same view again."""

from __future__ import annotations

import json

import pytest
from test_app import chart_spec, navigation_mode, open_page  # noqa: F401 - the fixture applies here too

from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig
from bptt_core.report.html import build_report
from dashboard import page_table
from dashboard.views import View, parse_view, view_json

# (page, what its report button adds for its own section) -- as the pages pass it
REPORT_KW = {
    "gradient_flow": dict(norm="2", block="h", threshold=1e-2),
    "truncation": dict(k1k2=(3, 5)),
    "clipping": dict(train_cfg=TrainConfig(steps=10, batch_size=2, clip_threshold=300.0)),
    "calculator": dict(calculator=dict(batch_size=4, num_layers=2, truncation=4, measure_time=False)),
    "spectrum": {},
}
SECTIONS = {"Gradient flow": 4, "Spectrum": 3, "Truncated BPTT": 2, "Clipping": 2, "Calculator": 1}


@pytest.mark.slow
@pytest.mark.parametrize("page", list(REPORT_KW))
def test_the_report_from_every_page_holds_every_page_and_figure(page):
    html = build_report(ModelConfig(hidden_size=6, seq_len=12), every_page=True, **REPORT_KW[page])
    for title in SECTIONS:
        assert f">{title}<" in html, title
    assert html.count('class="plotly-graph-div"') == sum(SECTIONS.values())


def open_saved_view(at):
    """Open the sidebar's lazy 'Open a saved view' expander (its controls exist only while it is open)."""
    at.session_state["view_expander"] = True
    return at.run()


def test_settings_json_of_a_page_opens_the_same_view():
    """The sidebar's 'Open a saved view' takes a page's export and reopens it: page, model, page settings."""
    saved = View("gradient_flow", ModelConfig(hidden_size=16, seq_len=20, seed=3), {"gf_norm": "2", "gf_view": "t,k"})
    at = open_page("overview")
    open_saved_view(at).text_area(key="view_text").set_value(view_json(saved)).run()
    at.button(key="view_open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Gradient flow"
    assert at.session_state["m_hidden"] == 16 and at.session_state["m_seed"] == 3
    assert at.session_state["gf_norm"] == "2" and at.session_state["gf_view"] == "t,k"
    assert "‖·‖<sub>2</sub>" in chart_spec(at, "gf_heatmap")["layout"]["title"]["text"]
    assert "lag" in chart_spec(at, "gf_heatmap")["layout"]["title"]["text"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not valid JSON"),
        (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {"hidden_size": 9999}}),
         "hidden_size"),
        (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {},
                     "page_settings": {"preset_goto": "x"}}), "not settings of the spectrum page"),
    ],
)  # fmt: skip
def test_a_bad_saved_view_is_refused_in_the_page_and_changes_nothing(text, message):
    at = open_page("overview")
    open_saved_view(at).text_area(key="view_text").set_value(text).run()
    at.button(key="view_open").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("cannot be opened" in e and message in e for e in errors), errors
    assert at.title[0].value == "BPTT Explorer" and at.session_state["m_hidden"] == 64


def test_export_names_carry_the_page_and_settings():
    at = open_page("spectrum", query={"m_cell": "gru", "m_hidden": "12"})
    configs = [c.proto.config for c in at.get("plotly_chart")]
    assert configs and all("bptt-spectrum-gru-H12-" in c for c in configs), configs
    assert parse_view(view_json(View("spectrum", ModelConfig())), tuple(page_table.BY_KEY)).page == "spectrum"
