"""Settings JSON round-trips to the same view; bad settings files are refused by name; file names say what they hold."""

import json

import pytest

from bptt_core.config import ModelConfig
from dashboard.views import View, file_stem, parse_view, view_json

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
