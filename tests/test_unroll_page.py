"""Click to unroll on the Gradient flow page: a click on the heatmap (what the browser sends, as in
tests/test_unroll_click.py) opens the clicked cell's chain, whose running product ends at the gradient-flow
matrix's value within 1e-9 in log10 (the page's heatmap multiplies the float32 model's chain in float64,
as the unroll does); the cell is kept in the URL (gf_cell=t,s) so a copied link reopens it; a bad gf_cell falls back
with a warning."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from test_app import chart_keys, chart_spec, decode, navigation_mode, open_page  # noqa: F401 - the fixture

from bptt_core.analyses.numbers import model_and_sequence
from bptt_core.config import ModelConfig
from bptt_core.flow.jacobians import jacobian_log_norms

SMALL = {"m_hidden": "6", "m_seq_len": "12"}
UNROLL_KEYS = {"gf_unroll", "gf_unroll_sv", "gf_unroll_sat", "gf_unroll_nonnormal", "gf_unroll_contrib"}


def click(at, key: str, x: int, y: int):
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key))
    states = at._tree.get_widget_states()
    w = states.widgets.add()
    w.id = chart.proto.id
    point = {"curve_number": 0, "point_number": [y - 1, x - 1], "x": x, "y": y, "z": 0.0}
    w.string_value = json.dumps({"selection": {"points": [point], "point_indices": [], "box": [], "lasso": []}})
    return at._run(states)


def exact_flow(**kw) -> np.ndarray:
    """The page's gradient-flow matrix with its chain multiplied in float64."""
    rnn, _, x, _, _ = model_and_sequence(ModelConfig(**kw))
    return jacobian_log_norms(rnn, x, dtype=torch.float64)


def running_end(at) -> float:
    """The last point of the chain figure's running product (the first trace)."""
    trace = chart_spec(at, "gf_unroll")["data"][0]
    return float(decode(trace["y"])[-1])


def heat_value(at, t: int, s: int) -> float:
    """The value the page's heatmap draws at (t, s), 1-indexed (every step shown: T <= 300)."""
    z = chart_spec(at, "gf_heatmap")["data"][0]["z"]
    if isinstance(z, dict):  # Plotly's typed array: flat bytes and their shape
        Z = decode(z).reshape([int(n) for n in str(z["shape"]).split(",")])
    else:
        Z = np.array([decode(row) for row in z], dtype=float)
    return float(Z[t - 1, s - 1])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_click_on_the_heatmap_opens_the_chain_ending_at_the_clicked_value(cell):
    at = open_page("gradient_flow", {**SMALL, "m_cell": cell})
    assert not at.exception and not UNROLL_KEYS & chart_keys(at)
    at = click(at, "gf_heatmap", x=3, y=9)
    assert not at.exception, [e.value for e in at.exception]
    assert UNROLL_KEYS <= chart_keys(at), chart_keys(at)
    L = exact_flow(hidden_size=6, seq_len=12, cell=cell)
    assert abs(running_end(at) - L[8, 2]) <= 1e-9
    assert abs(running_end(at) - heat_value(at, 9, 3)) <= 1e-9  # the value the heatmap draws
    assert at.session_state["gf_cell"] == "9,3" and at.query_params["gf_cell"] in ("9,3", ["9,3"])
    title = chart_spec(at, "gf_unroll")["layout"]["title"]["text"]
    assert title.startswith("∂h(9)/∂h(3) unrolled")


def test_a_copied_link_reopens_the_cell_without_a_click():
    at = open_page("gradient_flow", {**SMALL, "gf_cell": "7,2"})
    assert not at.exception and UNROLL_KEYS <= chart_keys(at)
    L = exact_flow(hidden_size=6, seq_len=12)
    assert abs(running_end(at) - L[6, 1]) <= 1e-9
    assert "gf_cell=7%2C2" in at.code[0].value or "gf_cell=7,2" in at.code[0].value


def test_a_later_click_replaces_a_typed_cell_and_a_typed_cell_outlives_the_old_click():
    at = click(open_page("gradient_flow", SMALL), "gf_heatmap", x=2, y=5)
    assert at.session_state["gf_cell"] == "5,2"
    at.text_input(key="gf_cell").input("10,4").run()
    assert at.session_state["gf_cell"] == "10,4"
    assert chart_spec(at, "gf_unroll")["layout"]["title"]["text"].startswith("∂h(10)/∂h(4)")
    at = click(at, "gf_heatmap", x=1, y=12)
    assert at.session_state["gf_cell"] == "12,1"


@pytest.mark.parametrize("bad", ["3,5", "0,0", "a,b", "5", "9,3,1", "1e3,2", "401,1"])
def test_a_bad_cell_in_the_url_falls_back_with_a_warning(bad):
    at = open_page("gradient_flow", {**SMALL, "gf_cell": bad})
    assert not at.exception
    assert any("gf_cell" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not UNROLL_KEYS & chart_keys(at) and "gf_heatmap" in chart_keys(at)


def test_a_cell_beyond_this_sequence_is_said_so():
    at = open_page("gradient_flow", {**SMALL, "gf_cell": "20,3"})
    assert not at.exception and not UNROLL_KEYS & chart_keys(at)
    assert any("outside this sequence (T = 12)" in w.value for w in at.warning)


def test_a_click_above_the_diagonal_is_refused_in_the_page():
    at = click(open_page("gradient_flow", SMALL), "gf_heatmap", x=8, y=2)
    assert not at.exception and not UNROLL_KEYS & chart_keys(at)
    assert any("s ≤ t" in w.value for w in at.warning)


def test_a_click_on_the_lag_view_opens_the_cell_t_minus_k():
    at = click(open_page("gradient_flow", {**SMALL, "gf_view": "t,k"}), "gf_heatmap", x=4, y=10)  # t = 10, k = 4
    assert not at.exception and at.session_state["gf_cell"] == "10,6"
    L = exact_flow(hidden_size=6, seq_len=12)
    assert abs(running_end(at) - L[9, 5]) <= 1e-9


@pytest.mark.parametrize("typed", ["abc", "3,5", "0,0", "4;2"])
def test_a_bad_typed_cell_is_said_so_in_the_page(typed):
    at = open_page("gradient_flow", SMALL)
    at.text_input(key="gf_cell").input(typed).run()
    assert not at.exception and not UNROLL_KEYS & chart_keys(at)
    assert any("is not two whole steps t,s" in w.value for w in at.warning), [w.value for w in at.warning]


@pytest.mark.parametrize("kw", [{"m_cell": "lru"}, {"m_cell": "minlstm"}, {"m_cell": "gru", "m_layers": "2"}])
def test_diagonal_cells_and_stacks_open_their_chain_in_the_page(kw):
    """Every cell type unrolls: the chain's figures are drawn and the page states the value it ends at,
    the heatmap's own (the input-dependent diagonal cells have no fixed W: no non-normality figure)."""
    at = open_page("gradient_flow", {**kw, "m_hidden": "8", "m_seq_len": "12", "gf_cell": "6,2"})
    assert not at.exception, [e.value for e in at.exception]
    assert {"gf_unroll", "gf_unroll_sv", "gf_unroll_sat"} <= chart_keys(at)
    assert ("gf_unroll_nonnormal" in chart_keys(at)) == (kw["m_cell"] != "minlstm")
    said = next(m.value for m in at.markdown if m.value.startswith("**∂h(6)/∂h(2)**"))
    assert "they differ by 0.0e+00" in said or re.search(r"differ by [0-9.]+e-(1[0-9]|[2-9][0-9])", said), said


def test_the_html_report_holds_the_open_cells_chain():
    """A report built while a cell is open has its chain (the page's unroll panels), ending at the value."""
    from test_player_pages import report_html

    from bptt_core.report.html import unroll_section_of

    at = open_page("gradient_flow", {**SMALL, "gf_cell": "9,3"})
    html = report_html(at, "gradient_flow")
    assert "Click to unroll: ∂h(9)/∂h(3)" in html
    assert "∂h(9)\\u002f∂h(3) unrolled" in html  # the chain figure's title (Plotly's JSON escapes the slash)
    title, figs = unroll_section_of(ModelConfig(hidden_size=6, seq_len=12), (8, 2))
    chain = figs[0][1]
    assert abs(chain.data[0].y[-1] - exact_flow(hidden_size=6, seq_len=12)[8, 2]) <= 1e-9
    without = report_html(open_page("gradient_flow", SMALL), "gradient_flow")
    assert "Click to unroll" not in without
    for bad in [(20, 3), (2, 5), "9,3"]:
        with pytest.raises(ValueError):
            unroll_section_of(ModelConfig(hidden_size=6, seq_len=12), bad)
