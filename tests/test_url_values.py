"""A URL is visitor input: every URL-bound widget on every page gets hostile values, and each one is
refused before Streamlit's widget reads it (a warning naming the key, the default used, no exception).

The keys are not listed here: they are read off each page (every widget whose protobuf carries a
``query_param_key``), so a control added later is swept too. A key given twice means its last value on
every kind of widget (docs/design.md, "From a widget to a figure").
"""

from __future__ import annotations

import pytest

from dashboard import settings as S
from tests.test_app import FAST_CLIP, PAGES, assert_ok, navigation_mode, open_page  # noqa: F401 - the fixture

# name -> the raw value put in the URL for every bound key of a page at once
HOSTILE = {
    "inf": "inf",
    "-inf": "-inf",
    "nan": "nan",
    "1e400": "1e400",
    "400 digits": "9" * 400,
    "empty": "",
    "wrong type": "banana",
    "arabic-indic digits": "١٢",
    "fullwidth digits": "１２",
    "unicode text": "ünï😀",
    "repeated, last bad": ["1", "inf"],
}


def bound_widgets(at) -> dict[str, object]:
    """Every URL-bound widget on the page (main area and sidebar): key -> its value now."""
    out = {}
    for w in _walk(at._tree):
        proto = getattr(w, "proto", None)
        key = getattr(proto, "query_param_key", "") if proto is not None else ""
        if key:
            out[key] = at.session_state[key]
    return out


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


@pytest.fixture(scope="module")
def defaults() -> dict[str, dict[str, object]]:
    """page -> {bound key: its default value}, read off the page at the default settings (the
    Clipping page's too: open_page asks it for fewer steps, whose widgets then hold those)."""
    out = {}
    for page in PAGES:
        at = open_page(page, {k: "banana" for k in FAST_CLIP} if page == "clipping" else None)
        out[page] = bound_widgets(at)
    return out


def test_every_page_binds_its_settings_to_the_url(defaults):
    shared = {s.key for s in S.MODEL_SETTINGS + S.VIEW_SETTINGS}
    for page, keys in defaults.items():
        assert shared <= set(keys), (page, shared - set(keys))
    assert {"gf_norm", "gf_view", "tb_k1", "tb_k2", "ca_batch", "ca_dataset", "cl_steps"} <= {
        k for keys in defaults.values() for k in keys
    }


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_url_values_are_refused_with_a_warning(defaults, page, name):
    keys = defaults[page]
    at = open_page(page, {k: HOSTILE[name] for k in keys})
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    for key, default in keys.items():
        assert any(f"**{key}**" in w and "falls back to the default" in w for w in warnings), (key, warnings)
        assert at.session_state[key] == default, (key, at.session_state[key], default)
    assert_ok(at, page)


# key -> (the repeated values, what the widget shows): the last value wins, slider or number input
REPEATED = [
    ("m_hidden", ["8", "16"], 16),  # a slider
    ("m_seed", ["3", "5"], 5),  # a number input
    ("m_gain", ["0.5", "2"], 2.0),  # a float number input
    ("m_cell", ["lstm", "gru"], "gru"),  # a select box
    ("lecture", ["true", "false"], False),  # a toggle
]


@pytest.mark.parametrize(("key", "values", "want"), REPEATED, ids=[r[0] for r in REPEATED])
def test_a_repeated_key_means_its_last_value(key, values, want):
    at = open_page("spectrum", {key: values})
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[key] == want
    assert not [w.value for w in at.warning if key in w.value]


def test_a_repeated_page_key_means_its_last_value_too():
    at = open_page("calculator", {"ca_batch": ["4", "1024"], "ca_dataset": ["5", "7"]})
    assert not at.exception
    assert (at.session_state["ca_batch"], at.session_state["ca_dataset"]) == (1024, 7)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("12", 12),
        ("1e1", 10),
        ("12.0", 12),
        (" 12", 12),
        ("1_2", None),
        ("0x1f", None),
        ("12.5", None),
        ("1e400", None),
    ],
)
def test_parse_reads_plain_ascii_numbers_only(raw, ok):
    hidden = next(s for s in S.MODEL_SETTINGS if s.key == "m_hidden")
    if ok is None:
        with pytest.raises(ValueError):
            hidden.parse(raw)
    else:
        assert hidden.parse(raw) == ok and hidden.spell(hidden.parse(raw)) == str(ok)
