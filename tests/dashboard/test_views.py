"""Saved views (dashboard/views.py): the settings JSON round-trips to the same view and reopens it from the
sidebar; bad settings files are refused by name, in the page too; file names say what they hold."""

from __future__ import annotations

import json

import pytest

from bptt_core.config import ModelConfig
from dashboard import page_table
from dashboard.views import View, file_stem, parse_view, view_json
from tests.helpers.apptest import (
    chart_spec,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
)

PAGES = ("overview", "gradient_flow", "spectrum", "clipping", "truncation", "calculator")

VIEWS = [
    View("gradient_flow", ModelConfig(), {"gf_norm": "2", "gf_view": "t,k", "gf_compare": True}),
    View("clipping", ModelConfig(cell="lstm", seq_len=120, forget_bias=1.0), {"clip_threshold": 300.0, "cl_steps": 50}),
    View("calculator", ModelConfig(cell="gru", init="gaussian", gain=1.3, seed=7), {}),
]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.page)
def test_settings_json_round_trips(view):
    text = view_json(view)
    assert parse_view(text, PAGES) == view
    assert parse_view(text.encode(), PAGES) == view  # an uploaded file


BAD = [
    ("not json", "not valid JSON"),
    ("[]", "format"),
    (json.dumps({"format": "bptt-explorer-view", "version": 2}), "version must be 1"),
    (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "admin", "model": {}}), "page must be one of"),
    (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {"hidden_size": 10**9}}),
     "hidden_size"),
    (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {"colour": 1}}),
     "unknown settings"),
    ('{"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {"gain": NaN}}', "NaN"),
    (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {},
                 "page_settings": {"gf_norm": [1, 2]}}), "gf_norm must be"),
    (json.dumps({"format": "bptt-explorer-view", "version": 1, "page": "spectrum", "model": {},
                 "page_settings": {"../x": 1}}), "not a setting name"),
    ("[" * 100000, "at most"),
]  # fmt: skip


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_settings_are_refused_by_name(text, message):
    with pytest.raises(ValueError, match=message):
        parse_view(text, PAGES)


def test_file_names_carry_the_page_and_the_key_settings():
    stem = file_stem("gradient_flow", ModelConfig(cell="lstm", hidden_size=32, seq_len=100, seed=3))
    assert stem == "bptt-gradient-flow-lstm-H32-orthogonal-g1-T100-seed3"
    assert "rho1p2" in file_stem("spectrum", ModelConfig(spectral_radius=1.2))
    up = file_stem("spectrum", ModelConfig(), uploaded="my model (v2).safetensors")
    assert up.startswith("bptt-spectrum-upload-my-model-v2-") and "/" not in up and " " not in up
    assert len({file_stem(v.page, v.cfg) for v in VIEWS}) == len(VIEWS)


# == A saved view reopened from the sidebar; export file names ===============================================


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
