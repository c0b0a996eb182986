"""Settings and the URL (dashboard/settings.py): every shared setting is bound and valid; bad, hostile or
repeated URL values are refused before Streamlit's widget reads them (a warning naming the key, the default
used, no exception).

The keys are not listed here: they are read off each page (every widget whose protobuf carries a
``query_param_key``), so a control added later is swept too. A key given twice means its last value on
every kind of widget (docs/design.md, "From a widget to a figure")."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import settings as S
from dashboard.settings import MODEL_SETTINGS
from tests.helpers.apptest import (
    APP,
    FAST_CLIP,
    PAGES,
    TIMEOUT,
    assert_ok,
    chart_spec,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    settle,
)


def test_sidebar_has_every_shared_setting_bound_and_valid():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    keys = {w.key for w in at.sidebar if getattr(w, "key", None)}
    assert {s.key for s in MODEL_SETTINGS} | {"lecture", "controls"} <= keys
    for s in MODEL_SETTINGS:
        assert at.session_state[s.key] == s.default


# -- bad URL values ---------------------------------------------------------------------------------------

BAD_VALUES = ["banana", "-5", "1e9"]
VALID_ANYWAY = {("1e9", "m_seed"), ("-5", "m_forget_bias")}  # in range: Streamlit and the page both take them


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_bad_url_values_warn_and_fall_back_to_defaults(bad):
    at = open_page("gradient_flow", {s.key: bad for s in MODEL_SETTINGS} | {"gf_norm": bad, "gf_view": bad})
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    for s in MODEL_SETTINGS:
        if (bad, s.key) in VALID_ANYWAY:
            assert s.key not in warnings and at.session_state[s.key] == s.parse(bad)
            continue
        assert s.key in warnings, f"no warning names {s.key}"
        assert at.session_state[s.key] == s.default
    assert "gf_norm" in warnings and "gf_view" in warnings
    assert_ok(at, "gradient_flow")


@pytest.mark.parametrize(
    "page,query",
    [
        ("truncation", {"tb_k1": "0", "tb_k2": "banana"}),
        ("clipping", {"clip_threshold": "-1", "cl_steps": "1e9", "cl_optimizer": "rmsprop"}),
        ("calculator", {"ca_batch": "0", "ca_time": "maybe", "ca_layers": "99"}),
    ],
)
def test_bad_page_url_values(page, query):
    at = open_page(page, query, wait_jobs=False)  # the warnings of the first run (the URL is then rewritten)
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for k in query:
        if k not in FAST_CLIP:
            assert k in warnings, k
    assert_ok(settle(at), page)


def test_valid_url_values_are_used():
    at = open_page("spectrum", {"m_hidden": "12", "m_init": "gaussian", "m_gain": "0.5", "m_seed": "3"})
    assert (at.session_state["m_hidden"], at.session_state["m_init"], at.session_state["m_gain"]) == (
        12,
        "gaussian",
        0.5,
    )
    eig = [tr for tr in chart_spec(at, "sp_eig")["data"] if tr.get("name") == "eigenvalues λ"][0]
    assert len(decode(eig["x"])) == 12  # one eigenvalue per hidden unit


# == A URL is visitor input: hostile values on every URL-bound widget ========================================

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


# == A refused flag names its default ========================================================================


def test_a_refused_flag_names_its_default_as_the_url_spells_it():
    at = open_page("overview", query={"lecture": "maybe"})
    texts = [w.value for w in at.warning]
    assert any("default false" in t for t in texts) and not any("False" in t for t in texts), texts
