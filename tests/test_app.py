"""AppTest for every page of the dashboard: defaults, every preset, the extremes of every control, bad
URL values and bad combinations. Each case asserts no exception and the charts it expects.

The grids are data (traingenerator style) and swept with pytest.mark.parametrize. The clipping page
trains three models, so its cases ask for 10 steps through the URL.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from bptt_core import presets as P
from bptt_core.config import CELLS, INITS, TASKS
from pages.common import MODEL_SETTINGS

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120
FAST_CLIP = {"cl_steps": "10", "cl_batch": "2"}  # keeps the twin runs well under a second

# page -> (page file, expected chart keys, its heading)
PAGES = {
    "overview": ("pages/overview.py", {"ov_diagram"}, "BPTT Explorer"),
    "gradient_flow": ("pages/gradient-flow.py", {"gf_heatmap", "gf_lag", "gf_dldh", "gf_contrib"}, "Gradient flow"),
    "spectrum": ("pages/spectrum.py", {"sp_eig", "sp_sv", "sp_lyap"}, "Spectrum"),
    "clipping": ("pages/clipping.py", {"cl_gradnorm", "cl_loss", "cl_dh"}, "Gradient clipping"),
    "truncation": ("pages/truncation.py", {"tb_heatmap", "tb_compare"}, "Truncated BPTT"),
    "calculator": ("pages/calculator.py", {"ca_memory"}, "BPTT calculator"),
}


@pytest.fixture(autouse=True)
def navigation_mode(monkeypatch):
    """AppTest resets Streamlit's 'pages/ folder' (MPA v1) flag before every run and, since our page
    scripts live in pages/, would then run the page alone, without app.py. In a real server the flag is
    cleared for good by the first st.navigation call; do the same here."""
    orig = PagesManager.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_page(page: str, query: dict | None = None, state: dict | None = None, wait_jobs: bool = True) -> AppTest:
    """The page as a browser opens it from a URL: its first run is the page itself, with these query
    parameters (a page run on its own draws the shared sidebar, as app.py does)."""
    script = APP if page == "overview" else str(Path(APP).parent / PAGES[page][0])
    at = AppTest.from_file(script, default_timeout=TIMEOUT)
    for k, v in {**(FAST_CLIP if page == "clipping" else {}), **(query or {})}.items():
        at.query_params[k] = v
    for k, v in (state or {}).items():
        at.session_state[k] = v
    return settle(at.run()) if wait_jobs else at.run()


def settle(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Rerun until no background job is in progress (a browser's progress fragment reruns the page when
    its job is done; AppTest does not run fragments on a timer)."""
    import time

    from bptt_core.jobs import default_runner

    end = time.monotonic() + timeout
    while at.get("progress") and time.monotonic() < end:
        runner = default_runner()
        while (runner.running() or runner.queued()) and time.monotonic() < end:
            time.sleep(0.05)
        at.run()
    return at


def open_through_router(page: str) -> AppTest:
    """app.py first, then the page through st.navigation (how a click in the menu gets there)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (FAST_CLIP if page == "clipping" else {}).items():
        at.query_params[k] = v
    at.run()
    return settle(at.switch_page(PAGES[page][0]).run()) if page != "overview" else at


def chart_keys(at: AppTest) -> set[str]:
    return {c.proto.id.rsplit("-", 1)[-1] if c.key is None else c.key for c in at.get("plotly_chart")}


def chart_spec(at: AppTest, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if c.key == key:
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key}; have {chart_keys(at)}")


def decode(v) -> np.ndarray:
    """A Plotly array from the figure JSON (plain list or base64 'bdata')."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def assert_ok(at: AppTest, page: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    missing = PAGES[page][1] - chart_keys(at)
    assert not missing, f"{page}: charts {missing} missing; errors: {[e.value for e in at.error]}"


# -- defaults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_page_defaults(page):
    at = open_through_router(page)
    assert_ok(at, page)
    assert at.title[0].value == PAGES[page][2]
    if page != "overview":
        assert not at.warning or page in ("spectrum", "clipping"), [w.value for w in at.warning]
        # every figure comes with its CSV download
        for key in PAGES[page][1]:
            assert any(b.proto.id.endswith(f"{key}_csv") or key in b.proto.id for b in at.get("download_button")), key


def test_sidebar_has_every_shared_setting_bound_and_valid():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    keys = {w.key for w in at.sidebar if getattr(w, "key", None)}
    assert {s.key for s in MODEL_SETTINGS} | {"lecture", "controls"} <= keys
    for s in MODEL_SETTINGS:
        assert at.session_state[s.key] == s.default


# -- presets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", P.PRESETS, ids=lambda p: p.key)
def test_preset_opens_its_page_with_its_settings(preset):
    at = open_page("overview", state={"cl_steps": 10, "cl_batch": 2})
    at.button(key=f"preset_{preset.key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == PAGES[preset.page][2]
    values = P.settings(preset)
    for s in MODEL_SETTINGS:
        assert at.session_state[s.key] == values[s.attr], s.key
    for k, v in preset.page_settings.items():
        assert at.session_state[k] == v
    assert PAGES[preset.page][1] <= chart_keys(at)


def test_lstm_vs_rnn_preset_draws_both_profiles():
    at = open_page("overview")
    at.button(key="preset_lstm_vs_rnn").click().run()
    names = [tr.get("name", "") for tr in chart_spec(at, "gf_lag")["data"]]
    assert any("LSTM" in n for n in names) and any("RNN" in n for n in names), names


# -- extremes of every control ----------------------------------------------------------------------------

EXTREMES = [
    ("gradient_flow", {"m_hidden": "1"}),
    ("gradient_flow", {"m_hidden": "256"}),
    ("gradient_flow", {"m_seq_len": "1"}),
    ("gradient_flow", {"m_seq_len": "400"}),
    ("gradient_flow", {"m_gain": "0.01", "m_init": "gaussian"}),
    ("gradient_flow", {"m_gain": "100", "m_init": "gaussian", "m_activation": "relu"}),
    ("gradient_flow", {"m_radius": "100", "m_activation": "linear"}),
    ("gradient_flow", {"m_seed": "2147483647", "m_init": "sparse"}),
    ("gradient_flow", {"m_cell": "lstm", "gf_block": "c", "gf_norm": "2", "gf_view": "t,k"}),
    ("gradient_flow", {"m_cell": "gru", "m_init": "identity", "m_task": "sine"}),
    ("gradient_flow", {"m_activation": "sigmoid", "m_init": "kaiming", "gf_horizon": "1e-6"}),
    ("spectrum", {"m_hidden": "1"}),
    ("spectrum", {"m_hidden": "256", "m_cell": "gru"}),
    ("spectrum", {"m_seq_len": "1", "m_init": "xavier_normal"}),
    ("truncation", {"tb_k1": "1", "tb_k2": "1", "m_seq_len": "20"}),
    ("truncation", {"tb_k1": "400", "tb_k2": "400"}),
    ("truncation", {"tb_k1": "7", "tb_k2": "3", "m_cell": "lstm", "m_task": "adding"}),
    ("clipping", {"clip_threshold": "0.01", "cl_optimizer": "adam", "cl_twin": "value"}),
    ("clipping", {"clip_threshold": "1000000", "cl_lr": "100", "m_task": "copy"}),
    ("calculator", {"ca_batch": "1024", "ca_layers": "8", "ca_trunc": "400", "ca_time": "false"}),
    ("calculator", {"ca_batch": "1", "ca_dataset": "1", "m_cell": "lstm", "m_hidden": "1", "m_seq_len": "1"}),
]


@pytest.mark.parametrize(
    "page,query", EXTREMES, ids=[f"{p}-{'-'.join(f'{k}={v}' for k, v in q.items())}" for p, q in EXTREMES]
)
def test_extremes(page, query):
    at = open_page(page, query)
    assert not at.warning or all("URL parameter" not in w.value for w in at.warning), [w.value for w in at.warning]
    for k, v in query.items():
        got = at.session_state[k]
        assert str(got).lower() == v.lower() or (not isinstance(got, str) and float(got) == float(v)), (k, got, v)
    assert_ok(at, page)


SMALL = {"m_hidden": "16", "m_seq_len": "20"}
OPTION_SWEEP = [("m_init", v) for v in INITS] + [("m_task", v) for v in TASKS] + [("m_cell", v) for v in CELLS]


@pytest.mark.parametrize("key,value", OPTION_SWEEP, ids=[f"{k}={v}" for k, v in OPTION_SWEEP])
def test_every_option_of_every_choice(key, value):
    at = open_page("gradient_flow", {**SMALL, key: value})
    assert at.session_state[key] == value
    assert_ok(at, "gradient_flow")


def test_large_work_asks_before_computing():
    at = open_page("gradient_flow", {"m_hidden": "256", "m_seq_len": "400"})
    assert not at.exception
    assert any("multiply-adds" in w.value for w in at.warning)
    assert "gf_heatmap" not in chart_keys(at)


@pytest.mark.parametrize(
    "query,needle",
    [
        ({"m_task": "temporal_order", "m_seq_len": "5"}, "at least 10"),
        ({"m_cell": "lstm", "m_hidden": "256", "m_seq_len": "400"}, "too large"),
    ],
)
def test_bad_combinations_show_an_error_not_a_traceback(query, needle):
    for page in ("gradient_flow", "truncation"):
        at = open_page(page, query)
        assert not at.exception
        assert any(needle in e.value for e in at.error), [e.value for e in at.error]


# -- bad URL values ---------------------------------------------------------------------------------------

BAD_VALUES = ["banana", "-5", "1e9"]
VALID_ANYWAY = {("1e9", "m_seed")}  # a seed of 10^9 is in range: Streamlit and the page both take it


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


# -- interaction, view flags, exports ---------------------------------------------------------------------


def test_changing_a_control_changes_the_figure():
    at = open_page("gradient_flow")
    before = chart_spec(at, "gf_heatmap")["layout"]["title"]["text"]
    at.session_state["gf_norm"] = "2"
    at.run()
    after = chart_spec(at, "gf_heatmap")["layout"]["title"]["text"]
    assert before != after and "<sub>2</sub>" in after
    at.session_state["m_seq_len"] = 20
    at.run()
    assert not at.exception
    assert chart_spec(at, "gf_heatmap")["layout"]["xaxis"]["title"]["text"] == "source step s"
    assert len(at.get("plotly_chart")) == 4


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


def test_html_report_button():
    at = open_page("spectrum", {"m_hidden": "8", "m_seq_len": "12"})
    at.button(key="spectrum_report").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("report" in b.proto.label.lower() and "HTML" in b.proto.label for b in at.get("download_button"))


def test_preset_from_a_page_whose_url_holds_bound_settings():
    """A preset clicked while the URL already carries bound values (a shared link) still switches."""
    at = open_page("overview", {"m_seq_len": "40", "m_hidden": "16"})
    at.button(key="preset_vanishing").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5
