"""The dashboard as a whole (app.py and every page through it): each page at its defaults, the extremes of
every control, bad combinations, every cell and stacks on every page, the theory shown on two pages, what the
first page costs, no emoji, and no memory kept by reruns. Tests of one page are in tests/pages/, of one
dashboard module in tests/dashboard/.

The grids are data (traingenerator style) and swept with pytest.mark.parametrize. The clipping page
trains three models, so its cases ask for 10 steps through the URL."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bptt_core.config import CELLS
from tests.helpers.apptest import (
    PAGES,
    SMALL_H16,
    assert_ok,
    chart_spec,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
    open_details,
    open_page,
    open_through_router,
)
from tests.helpers.fresh_interpreter import run_fresh
from tests.helpers.memory import settle
from tests.helpers.phase import trace


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


@pytest.mark.parametrize("page", ["gradient_flow", "spectrum"])
def test_page_and_report_draw_the_same_figures(page):
    """The page's charts are bptt_core.report.panels' figures, the ones the HTML report prints."""
    from bptt_core.config import ModelConfig
    from bptt_core.report.html import flow_view_of, spectrum_panels_of

    at = open_page(page, SMALL_H16)
    cfg = ModelConfig(hidden_size=16, seq_len=20)
    panels = flow_view_of(cfg).panels if page == "gradient_flow" else spectrum_panels_of(cfg)
    assert {p.key for p in panels} == PAGES[page][1]
    from bptt_core.figures.heatmaps import clickable_cells

    for p in panels:
        fig = clickable_cells(p.figure) if p.key == "gf_heatmap" else p.figure  # the page's heatmap takes clicks
        assert chart_spec(at, p.key)["data"] == json.loads(fig.to_json())["data"], p.key


NEW_CELLS = [c for c in CELLS if c not in ("rnn", "lstm", "gru")]


@pytest.mark.parametrize("cell", NEW_CELLS)
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_takes_the_newer_cells(page, cell):
    at = open_page(page, {**SMALL_H16, "m_cell": cell})
    assert at.session_state["m_cell"] == cell
    assert_ok(at, page)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_takes_a_stacked_model(page):
    at = open_page(page, {**SMALL_H16, "m_cell": "lstm", "m_layers": "2"})
    assert at.session_state["m_layers"] == 2
    assert_ok(at, page)


# == What the first page costs: torch imported only when needed ==============================================

# what is run -> whether torch may be imported by then
CASES = {
    "the library's package and its torch-free modules": (
        "import bptt_core\nfrom bptt_core import config, units\nfrom bptt_core.figures import style, labels\n"
        "from bptt_core.flow import plan\nfrom bptt_core.analyses import cost\nfrom bptt_core.sweeps import grid\n"
        "from bptt_core.cli.main import build_parser\nbuild_parser()\nfrom dashboard import presets",
        False,
    ),
    "the dashboard's shared modules": (
        "import dashboard.page_table, dashboard.settings, dashboard.uploads, dashboard.compute, dashboard.layout",
        False,
    ),
    "the Overview page, as the first visitor opens it": (
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "assert any('data-key=\"ov_diagram\"' in h.proto.body for h in at.get('html')), 'the diagram was not drawn'",
        False,
    ),
    "a public name of the library": ("from bptt_core import jacobian_log_norms", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_torch_is_imported_only_when_needed(case):
    code, torch_expected = CASES[case]
    assert run_fresh(code)["torch"] is torch_expected


# == No emoji in the interface text ==========================================================================

ROOT = Path(__file__).resolve().parents[1]

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


# == Mean-field theory on the Gradient flow and Spectrum pages ===============================================


def test_theory_on_gradient_flow_and_spectrum_pages():
    from bptt_core.config import ModelConfig
    from bptt_core.flow.theory import page_prediction
    from tests.helpers.apptest import open_page

    query = {"m_init": "gaussian", "m_gain": "1.5", "m_hidden": "16", "m_seq_len": "20"}
    at = open_page("gradient_flow", query)
    assert not at.exception, [e.value for e in at.exception]
    p = page_prediction(ModelConfig(init="gaussian", gain=1.5, hidden_size=16, seq_len=20))
    text = next(m.value for m in at.markdown if m.value.startswith("**Mean-field prediction**"))
    assert f"**{p['decay_rate']:+.3g}**" in text and f"{p['chi1']:.3g}" in text
    at = open_page("spectrum", query)
    assert not at.exception, [e.value for e in at.exception]
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == "sp_eig")
    circle = trace(spec, "circular law")
    xs = decode(circle["x"]).astype(float)
    assert xs.max() == pytest.approx(1.5)  # radius g
    at = open_page("spectrum", {**query, "m_init": "orthogonal"})  # not a Gaussian init: no circle
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == "sp_eig")
    assert not any(d.get("name", "").startswith("circular law") for d in spec["data"])
    assert not any(
        m.value.startswith("**Mean-field")
        for m in open_page("gradient_flow", {**query, "m_init": "orthogonal"}).markdown
    )


# == A server that keeps rerunning keeps nothing =============================================================

RERUN_PAGES = ["gradient_flow", "spectrum", "clipping", "truncation", "calculator"]
# Reruns cycle through a few seeds: after the first round every computation is a cache hit, so the
# caches stop growing and what a rerun still keeps is the page's own (drawing, serialising, state).
SEEDS = 4
ROUNDS_WARM, ROUNDS_MEASURED = 2, 4
LEAK_BLOCKS = 20  # per rerun; the orjson leak kept ~1300 at the defaults


def rerun_with_seed(at: AppTest, seed: int, page: str) -> None:
    at.number_input(key="m_seed").set_value(seed).run()
    assert_ok(at, page)


@pytest.mark.parametrize("page", RERUN_PAGES)
def test_reruns_leave_no_memory_behind(page):
    at = open_through_router(page)
    seed = at.session_state["m_seed"]
    for k in range(ROUNDS_WARM * SEEDS):
        rerun_with_seed(at, seed + 1 + k % SEEDS, page)
    settle()
    before = sys.getallocatedblocks()
    for k in range(ROUNDS_MEASURED * SEEDS):
        rerun_with_seed(at, seed + 1 + k % SEEDS, page)
    settle()
    per_rerun = (sys.getallocatedblocks() - before) / (ROUNDS_MEASURED * SEEDS)
    assert per_rerun < LEAK_BLOCKS, f"{page}: {per_rerun:.0f} blocks kept per rerun"
