"""AppTest for every page of the dashboard: defaults, every preset, the extremes of every control, bad
URL values and bad combinations. Each case asserts no exception and the charts it expects.

The grids are data (traingenerator style) and swept with pytest.mark.parametrize. The clipping page
trains three models, so its cases ask for 10 steps through the URL.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from bptt_core.config import CELLS, INITS, TASKS
from dashboard import presets as P
from dashboard.layout import EXPORTS_OPEN, details_key
from dashboard.settings import MODEL_SETTINGS, PRESET_PICK

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
    # The exports' expander open (closed, its elements are not drawn: tested on its own below).
    for k, v in {EXPORTS_OPEN: True, **(state or {})}.items():
        at.session_state[k] = v
    return settle(at.run()) if wait_jobs else at.run()


def pick_preset(at: AppTest, key: str) -> AppTest:
    """Click the preset's button in the Overview's row of presets (one st.pills)."""
    return at.button_group(key=PRESET_PICK).set_value(key)


def settle(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Rerun until no background job is in progress (a browser's progress fragment reruns the page when
    its job is done; AppTest does not run fragments on a timer)."""
    import time

    from dashboard.jobs import default_runner

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


def open_details(at: AppTest, figure_keys) -> AppTest:
    """Open the figures' expanders (each holds its explanation and CSV, drawn only while it is open)."""
    for key in figure_keys:
        at.session_state[details_key(key)] = True
    return settle(at.run())


def chart_keys(at: AppTest) -> set[str]:
    """The figures drawn: Plotly charts by key, and static SVG figures (layout.diagram) by data-key."""
    plotly = {c.proto.id.rsplit("-", 1)[-1] if c.key is None else c.key for c in at.get("plotly_chart")}
    return plotly | {m for h in at.get("html") for m in re.findall(r'data-key="(\w+)"', h.proto.body)}


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
        # every figure comes with its CSV download, inside its expander (drawn once that is open)
        assert not any(b.proto.id.endswith(f"{k}_csv") for b in at.get("download_button") for k in PAGES[page][1])
        open_details(at, PAGES[page][1])
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
    settle(pick_preset(at, preset.key).run())
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == PAGES[preset.page][2]
    values = P.settings(preset)
    for s in MODEL_SETTINGS:
        assert at.session_state[s.key] == values[s.attr], s.key
    for k, v in preset.page_settings.items():
        assert at.session_state[k] == v
    assert PAGES[preset.page][1] <= chart_keys(at)
    # the page states what the preset claims, with the measured value beside it, and it holds
    claims = [m.value for m in at.markdown if "Claim:" in m.value]
    assert len(claims) == len(preset.claims) and all("**holds**" in c for c in claims), claims
    assert all(c.claim.text in " ".join(claims) for c in preset.check())


def test_the_row_of_presets_forgets_its_pick():
    """A pick applies the preset and clears the row, so the same preset can be picked again later."""
    at = open_page("overview")
    pick_preset(at, "vanishing").run()
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5
    at.session_state["m_gain"] = 2.0
    at.switch_page(PAGES["overview"][0]).run()
    assert at.button_group(key=PRESET_PICK).value is None
    pick_preset(at, "vanishing").run()
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5


def test_a_changed_setting_ends_the_preset_claims():
    at = open_page("overview")
    pick_preset(at, "vanishing").run()
    assert any("Claim:" in m.value for m in at.markdown)
    at.session_state["m_seed"] = 5
    at.run()
    assert not any("Claim:" in m.value for m in at.markdown)


def test_lstm_vs_rnn_preset_draws_both_profiles():
    at = open_page("overview")
    pick_preset(at, "lstm_vs_rnn").run()
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
    ("truncation", {"tb_k1": "400", "tb_k2": "400", "m_seq_len": "400", "m_hidden": "8"}),  # k ends at T
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


def test_large_work_runs_in_the_background_and_over_budget_work_asks():
    from dashboard import compute
    from dashboard.jobs import default_runner

    at = open_page("gradient_flow", {"m_hidden": "256", "m_seq_len": "400", "m_seed": "77"}, wait_jobs=False)
    assert not at.exception
    assert at.get("progress") and "The gradient-flow matrix" in at.get("progress")[0].proto.text
    assert "gf_heatmap" not in chart_keys(at)
    runner = default_runner()
    for key in [k for k in list(runner._active) if k[0] == compute.FLOW.name and k[1].cfg.seed == 77]:
        runner.cancel(key)  # the test need not wait for it
    at = open_page("gradient_flow", {"m_hidden": "256", "m_seq_len": "400", "gf_norm": "2"}, wait_jobs=False)
    assert not at.exception
    assert any("over the per-request budget" in w.value for w in at.warning)
    assert "gf_heatmap" not in chart_keys(at) and not at.get("progress")


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


def test_preset_from_a_page_whose_url_holds_bound_settings():
    """A preset clicked while the URL already carries bound values (a shared link) still switches."""
    at = open_page("overview", {"m_seq_len": "40", "m_hidden": "16"})
    pick_preset(at, "vanishing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Gradient flow" and at.session_state["m_gain"] == 0.5


# -- one source for page and report; view-only controls recompute nothing -------------------------------


@pytest.mark.parametrize("page", ["gradient_flow", "spectrum"])
def test_page_and_report_draw_the_same_figures(page):
    """The page's charts are bptt_core.report.panels' figures, the ones the HTML report prints."""
    from bptt_core.config import ModelConfig
    from bptt_core.report.html import flow_view_of, spectrum_panels_of

    at = open_page(page, SMALL)
    cfg = ModelConfig(hidden_size=16, seq_len=20)
    panels = flow_view_of(cfg).panels if page == "gradient_flow" else spectrum_panels_of(cfg)
    assert {p.key for p in panels} == PAGES[page][1]
    from bptt_core.figures.heatmaps import clickable_cells

    for p in panels:
        fig = clickable_cells(p.figure) if p.key == "gf_heatmap" else p.figure  # the page's heatmap takes clicks
        assert chart_spec(at, p.key)["data"] == json.loads(fig.to_json())["data"], p.key


def test_truncation_numbers_come_from_the_library():
    from bptt_core.learning.truncation import tbptt_schedule

    at = open_page("truncation", {"m_seq_len": "23", "tb_k1": "5", "tb_k2": "3"})
    assert_ok(at, "truncation")
    shown = {m.label: m.value for m in at.metric}
    assert shown["Updates per sequence"] == str(len(tbptt_schedule(23, 5, 3))) == "5"


# (page, key, value): controls that change only how the figures look
VIEW_ONLY = [
    ("gradient_flow", "gf_view", "t,k"),
    ("gradient_flow", "gf_horizon", "1e-6"),
    ("gradient_flow", "gradient_flow_svg", True),
    ("gradient_flow", "lecture", True),
    ("spectrum", "spectrum_svg", True),
    ("spectrum", "lecture", True),
    ("truncation", "truncation_svg", True),
    ("clipping", "cl_twin", "norm"),
    ("clipping", "clipping_svg", True),
    ("clipping", "lecture", True),
    ("calculator", "calculator_svg", True),
]


@pytest.mark.parametrize("page", ["gradient_flow", "spectrum", "calculator"])
def test_a_spinner_only_on_a_cache_miss(page, monkeypatch):
    """A spinner costs a timer thread and a message even when the work is cached: the pages leave it to the
    caches, which show it on a miss only. A rerun at cached settings starts no spinner; the first one does."""
    import threading

    started = []
    real = threading.Timer.start
    monkeypatch.setattr(threading.Timer, "start", lambda self: started.append(self) or real(self))
    from dashboard.jobs import default_runner

    st.cache_data.clear()
    st.cache_resource.clear()
    default_runner().forget_results()  # the analyses' results (the gradient-flow matrix) are kept there
    at = open_page(page)
    assert started, "no spinner on the first run: the positive control"
    started.clear()
    at.run()
    assert not at.exception and not started, f"{len(started)} spinners on a rerun at cached settings"


@pytest.mark.parametrize(("page", "key", "value"), VIEW_ONLY, ids=[f"{p}-{k}" for p, k, _ in VIEW_ONLY])
def test_a_view_only_control_recomputes_nothing(page, key, value):
    from dashboard import compute

    at = open_page(page)
    assert_ok(at, page)
    before = dict(compute.COMPUTED)
    at.session_state[key] = value
    at.run()
    assert_ok(at, page)
    assert dict(compute.COMPUTED) == before  # no number computed again, no twin retrained


def test_a_norm_seen_before_is_not_computed_again():
    from dashboard import compute

    at = open_page("gradient_flow", {"m_seed": "770077"})  # a seed no other test uses: the first run computes
    counts = [compute.COMPUTED["flow_matrix"]]
    for norm in ("2", "fro", "2"):
        at.session_state["gf_norm"] = norm
        at.run()
        assert_ok(at, "gradient_flow")
        counts.append(compute.COMPUTED["flow_matrix"])
    assert [b - a for a, b in zip(counts, counts[1:], strict=False)] == [1, 0, 0]


# -- the calculator: its controls, the Gradient flow page's numbers, the uploaded model ----------------


def _calculator_rows(at) -> dict:
    t = at.table[0].value
    return dict(zip(t["quantity"], t["value"], strict=True))


def test_calculator_shows_training_memory_for_the_chosen_optimizer_and_checkpointing():
    at = open_page("calculator", {"ca_opt": "adam", "ca_ckpt": "true", "ca_time": "false", "ca_input": "5",
                                  "ca_output": "4", "ca_trunc": "10", "m_hidden": "8", "m_seq_len": "30"})  # fmt: skip
    assert_ok(at, "calculator")
    rows = _calculator_rows(at)
    for q in ("total training memory, full BPTT", "total training memory, TBPTT(k = 10)",
              "total training memory, checkpointing every 6 steps", "FLOPs per epoch", "optimiser state (adam)"):  # fmt: skip
        assert q in rows, q
    H, I, O = 8, 5, 4  # the page's input and output sizes are used
    assert rows["total parameters"].replace(",", "") == str(H * (I + H) + 2 * H + H * O + O)
    kinds = ("selectbox", "number_input", "toggle", "checkbox", "slider", "select_slider")
    keys = {w.key for kind in kinds for w in at.get(kind)}
    assert {"ca_input", "ca_output", "ca_opt", "ca_ckpt", "ca_layers"} <= keys


@pytest.mark.parametrize(
    "query, cfg_kw",
    [
        ({"m_cell": "lstm", "m_hidden": "8", "m_seq_len": "40", "m_task": "adding"},
         dict(cell="lstm", hidden_size=8, seq_len=40, task="adding")),
        ({"m_hidden": "12", "m_seq_len": "60", "m_radius": "2"}, dict(hidden_size=12, seq_len=60, spectral_radius=2.0)),
        ({"m_cell": "gru", "m_layers": "2", "m_hidden": "8", "m_seq_len": "30"},
         dict(cell="gru", num_layers=2, hidden_size=8, seq_len=30)),
    ],
)  # fmt: skip
def test_calculator_gives_the_gradient_flow_pages_decay_rate_and_horizon(query, cfg_kw):
    from bptt_core.analyses.numbers import flow_matrix_of, spectrum_of
    from bptt_core.config import ModelConfig
    from bptt_core.report.panels import flow_summary

    at = open_page("calculator", {**query, "ca_time": "false"})
    assert_ok(at, "calculator")
    cfg = ModelConfig(**cfg_kw)
    s = flow_summary(flow_matrix_of(cfg), spectrum_of(cfg), cfg.cell)
    rows = _calculator_rows(at)
    assert rows["decay rate"] == f"{s.rate:.4g}"
    assert rows["memory horizon"] == ("—" if s.horizon is None else f"{s.horizon:,}")
    if cfg.spectral_radius:
        assert rows["spectral radius rho"] == f"{cfg.spectral_radius:.4g}"  # the sidebar's rho, not the init's


def test_calculator_describes_the_uploaded_model():
    from bptt_core.analyses import sources as S
    from bptt_core.files.model_io import model_bytes
    from dashboard import uploads

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 16)
    up = S.make_upload(model_bytes(lstm, "m.pt", None), "m.pt", None, None, "")[0]
    at = open_page("calculator", {"ca_time": "false"}, {uploads.STATE: up})
    assert_ok(at, "calculator")
    rows = _calculator_rows(at)
    O = int(rows["readout parameters"].replace(",", "")) // 17  # H O + O with H = 16
    assert rows["total parameters"].replace(",", "") == str(sum(p.numel() for p in lstm.parameters()) + 17 * O)
    assert any("uploaded m.pt" in m.value for m in at.markdown)
    how = dict(zip(at.table[0].value["quantity"], at.table[0].value["how it was obtained"], strict=True))
    assert "the uploaded m.pt" in how["decay rate"] and "the uploaded m.pt" in how["recurrent parameters"]


NEW_CELLS = [c for c in CELLS if c not in ("rnn", "lstm", "gru")]


@pytest.mark.parametrize("cell", NEW_CELLS)
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_takes_the_newer_cells(page, cell):
    at = open_page(page, {**SMALL, "m_cell": cell})
    assert at.session_state["m_cell"] == cell
    assert_ok(at, page)


def test_lru_ring_preset_draws_the_lru_against_the_rnn():
    at = open_page("overview")
    pick_preset(at, "lru_ring").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["m_r_min"] == 0.9 and at.session_state["m_r_max"] == 0.999
    names = [tr.get("name", "") for tr in chart_spec(at, "gf_lag")["data"]]
    assert any("LRU" in n for n in names) and any("RNN" in n for n in names), names


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_takes_a_stacked_model(page):
    at = open_page(page, {**SMALL, "m_cell": "lstm", "m_layers": "2"})
    assert at.session_state["m_layers"] == 2
    assert_ok(at, page)


def test_stacked_model_from_the_sidebar_and_a_refused_combination():
    at = open_page("gradient_flow", {**SMALL, "m_cell": "gru", "m_layers": "3"})
    assert_ok(at, "gradient_flow")
    spec = chart_spec(at, "gf_depth")  # the depth x time picture, top layer first
    assert spec["data"][0]["y"] == ["layer 2 (top)", "layer 1", "layer 0"]
    assert "gf_depth" not in chart_keys(open_page("gradient_flow", SMALL))  # one layer: not shown
    at = open_page("gradient_flow", {**SMALL, "m_cell": "lru", "m_layers": "2"})
    assert not at.exception
    assert any("num_layers must be 1 for the lru cell" in e.value for e in at.error), [e.value for e in at.error]


def test_lru_spectrum_page_shows_the_sensitivity_curve():
    at = open_page("spectrum", {**SMALL, "m_cell": "lru"})
    assert_ok(at, "spectrum")
    names = [tr.get("name", "") for tr in chart_spec(at, "sp_lambda")["data"]]
    assert names[0].endswith("measured") and any("∂h_T/∂h_1" in n for n in names), names
    assert "sp_lambda" not in chart_keys(open_page("spectrum", SMALL))  # only for the LRU


def test_a_presets_claims_are_measured_on_the_pages_own_numbers(monkeypatch):
    """The Clipping preset's claims need the three twins: they come from the page's own training, not a second one."""
    import bptt_core.learning.training as T
    import dashboard.jobs as J
    from bptt_core.report import claims
    from dashboard import compute

    runner = J.JobRunner()  # nothing trained yet, whatever other tests left in the process-wide one
    monkeypatch.setattr(J, "default_runner", lambda: runner)
    compute.preset_checks.clear()
    claims._library_twins.cache_clear()
    calls = []
    real = T.twin_runs
    monkeypatch.setattr(T, "twin_runs", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = open_page("overview")
    try:
        settle(pick_preset(at, "clipping").run())
    finally:
        runner.shutdown()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Claim:" in m.value for m in at.markdown)
    assert len(calls) == 1, f"the twins were trained {len(calls)} times"


def sent_figures(at: AppTest) -> dict[str, str]:
    """Every chart's key -> the figure JSON the page sent."""
    return {c.key: c.proto.spec for c in at.get("plotly_chart")}


@pytest.mark.parametrize("page", ["gradient_flow", "spectrum", "clipping", "truncation", "calculator"])
def test_a_stored_view_is_sent_unchanged_at_every_rerun(page):
    """The figures ready to draw are stored once and handed to every rerun as the same objects
    (st.cache_resource): what a page sends after going to H = 9 and back to 8 equals what it sent first,
    so nothing that shows a view changed the stored one."""
    at = open_page(page, {"m_hidden": "8"})
    assert_ok(at, page)
    first = sent_figures(at)
    at.slider(key="m_hidden").set_value(9).run()
    assert_ok(at, page)
    assert sent_figures(at) != first, "H = 9 drew the same figures: the positive control"
    settle(at.slider(key="m_hidden").set_value(8).run())
    at.run()
    assert_ok(at, page)
    assert sent_figures(at) == first
