"""The Gradient flow page (pages/gradient-flow.py) in AppTest: its controls, stacks, compare mode, and
click to unroll (a click on the heatmap, as the browser sends it, opens the chain behind that cell)."""

from __future__ import annotations

import json
import re
import urllib.parse

import numpy as np
import pytest
import torch

from bptt_core.analyses.numbers import model_and_sequence
from bptt_core.config import CELLS, INITS, TASKS, ModelConfig
from bptt_core.flow.jacobians import jacobian_log_norms
from tests.helpers.apptest import (
    SMALL_H16,
    assert_ok,
    chart_keys,
    chart_spec,
    decode,
    navigation_mode,  # noqa: F401 - the fixture
    open_page,
    z_of,
)

OPTION_SWEEP = [("m_init", v) for v in INITS] + [("m_task", v) for v in TASKS] + [("m_cell", v) for v in CELLS]


@pytest.mark.parametrize("key,value", OPTION_SWEEP, ids=[f"{k}={v}" for k, v in OPTION_SWEEP])
def test_every_option_of_every_choice(key, value):
    at = open_page("gradient_flow", {**SMALL_H16, key: value})
    assert at.session_state[key] == value
    assert_ok(at, "gradient_flow")


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


def test_stacked_model_from_the_sidebar_and_a_refused_combination():
    at = open_page("gradient_flow", {**SMALL_H16, "m_cell": "gru", "m_layers": "3"})
    assert_ok(at, "gradient_flow")
    spec = chart_spec(at, "gf_depth")  # the depth x time picture, top layer first
    assert spec["data"][0]["y"] == ["layer 2 (top)", "layer 1", "layer 0"]
    assert "gf_depth" not in chart_keys(open_page("gradient_flow", SMALL_H16))  # one layer: not shown
    at = open_page("gradient_flow", {**SMALL_H16, "m_cell": "lru", "m_layers": "2"})
    assert not at.exception
    assert any("num_layers must be 1 for the lru cell" in e.value for e in at.error), [e.value for e in at.error]


# == A stale LSTM block ======================================================================================


def test_a_stale_lstm_block_leaves_with_the_lstm():
    at = open_page("gradient_flow", query={"m_cell": "rnn", "gf_block": "c"})
    assert not at.exception
    assert at.session_state["gf_block"] == "h"
    assert "∂h(t)/∂h(s)" in chart_spec(at, "gf_heatmap")["layout"]["title"]["text"]


# == Compare mode on the Gradient flow page (compare=true, B under b_ keys) ==================================

SMALL = {"m_hidden": "6", "m_seq_len": "12"}
CMP_KEYS = {"gf_cmp_a", "gf_cmp_b", "gf_cmp_ratio"}


def metrics(at):
    (df,) = [d.value for d in at.dataframe if "B − A" in d.value.columns]
    return df


def test_compare_is_off_by_default_and_B_starts_as_a_copy_of_A():
    at = open_page("gradient_flow", {**SMALL, "m_gain": "1.5"})
    assert not at.exception and not CMP_KEYS & chart_keys(at)
    at.toggle(key="compare").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert CMP_KEYS <= chart_keys(at)
    assert at.session_state["b_m_hidden"] == 6 and at.session_state["b_m_gain"] == 1.5
    # B = A: every difference exactly zero
    D = z_of(at, "gf_cmp_ratio")
    assert np.isfinite(D).any() and (D[np.isfinite(D)] == 0).all()
    df = metrics(at)
    d = df["B − A"].to_numpy(float)
    assert ((d == 0) | (np.isnan(df["A"].to_numpy(float)) & np.isnan(df["B"].to_numpy(float)))).all(), df
    assert (d == 0).sum() >= 3
    assert np.array_equal(z_of(at, "gf_cmp_a"), z_of(at, "gf_cmp_b"), equal_nan=True)


def test_the_two_heatmaps_share_one_colour_range_covering_both():
    at = open_page("gradient_flow", {**SMALL, "compare": "true", "b_m_hidden": "6", "b_m_seq_len": "12",
                                     "b_m_gain": "3", "b_m_init": "gaussian"})  # fmt: skip
    assert not at.exception and CMP_KEYS <= chart_keys(at)
    a, b = (chart_spec(at, k)["data"][0] for k in ("gf_cmp_a", "gf_cmp_b"))
    assert a["zmin"] == b["zmin"] and a["zmax"] == b["zmax"]
    za, zb = z_of(at, "gf_cmp_a"), z_of(at, "gf_cmp_b")
    both = np.concatenate([za[np.isfinite(za)], zb[np.isfinite(zb)]])
    assert a["zmin"] <= both.min() and a["zmax"] >= both.max()
    assert np.abs(za[np.isfinite(za)] - zb[np.isfinite(zb)]).max() > 0.1  # B really differs here
    D = z_of(at, "gf_cmp_ratio")
    assert (D[np.isfinite(D)] != 0).any()


def test_the_link_round_trips_A_and_B():
    query = {**SMALL, "compare": "true", "b_m_cell": "lstm", "b_m_hidden": "8", "b_m_seq_len": "10", "b_m_seed": "3"}
    at = open_page("gradient_flow", query)
    assert not at.exception and CMP_KEYS <= chart_keys(at)
    link = next(c.value for c in at.code if c.value.startswith("http"))
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    for k, v in query.items():
        assert params.get(k) == v, (k, params)
    again = open_page("gradient_flow", params)
    assert not again.exception
    for k in ("b_m_cell", "b_m_hidden", "b_m_seq_len", "b_m_seed", "m_hidden", "m_seq_len"):
        assert again.session_state[k] == at.session_state[k], k
    assert np.array_equal(z_of(again, "gf_cmp_ratio"), z_of(at, "gf_cmp_ratio"), equal_nan=True)
    assert z_of(at, "gf_cmp_ratio").shape == (10, 10)  # the steps both have


def test_bad_B_values_in_the_url_fall_back_with_a_warning_like_As():
    at = open_page("gradient_flow", {**SMALL, "compare": "true", "b_m_hidden": "inf", "b_m_cell": "transformer",
                                     "b_m_seq_len": "12", "b_m_gain": "1e400"})  # fmt: skip
    assert not at.exception
    shown = " ".join(w.value for w in at.warning)
    for key in ("b_m_hidden", "b_m_cell", "b_m_gain"):
        assert f"URL parameter **{key}**" in shown and "falls back to the default" in shown, key
    assert at.session_state["b_m_hidden"] == 64 and at.session_state["b_m_cell"] == "rnn"
    assert CMP_KEYS <= chart_keys(at)


def test_compare_cells_is_a_shortcut_for_a_B_preset():
    at = open_page("gradient_flow", {**SMALL, "m_gain": "1.5"})
    at.toggle(key="gf_compare").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["compare"] is True and at.session_state["b_m_cell"] == "lstm"
    assert at.session_state["b_m_hidden"] == 6 and at.session_state["b_m_gain"] == 1.5  # the rest is A's
    assert at.selectbox(key="b_m_cell").value == "lstm"  # B's sidebar section shows it
    assert CMP_KEYS <= chart_keys(at)
    names = [tr.get("name", "") for tr in chart_spec(at, "gf_lag")["data"]]
    assert any("B: LSTM" in n for n in names) and any("(RNN)" in n for n in names), names
    link = next(c.value for c in at.code if c.value.startswith("http"))
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    assert params["compare"] == "true" and params["b_m_cell"] == "lstm"
    at.toggle(key="gf_compare").set_value(False).run()
    assert not at.exception and at.session_state["compare"] is False
    assert not CMP_KEYS & chart_keys(at)


def test_a_link_with_compare_cells_alone_opens_the_B_preset():
    at = open_page("gradient_flow", {**SMALL, "m_cell": "lstm", "gf_compare": "true"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["compare"] is True and at.session_state["b_m_cell"] == "rnn"
    assert CMP_KEYS <= chart_keys(at)


def test_a_metric_one_model_lacks_is_n_a_with_the_reason():
    """γσ₁ has no meaning for a gated cell: B = LSTM shows n/a (not "None") and says why; B = A does not."""
    same = open_page("gradient_flow", {**SMALL, "compare": "true"})
    missing = metrics(same)[["A", "B"]].isna().to_numpy().any()
    assert any("n/a:" in c.value for c in same.caption) == missing  # the caption only where something is n/a
    lstm = open_page("gradient_flow", {**SMALL, "compare": "true", "b_m_cell": "lstm"})
    assert not lstm.exception, [e.value for e in lstm.exception]
    df = metrics(lstm)
    row = df[df["metric"].str.startswith("γσ₁")]
    assert len(row) == 1 and np.isnan(float(row["B"].iloc[0])) and np.isnan(float(row["B − A"].iloc[0]))
    assert any("n/a: the number does not exist for that model" in c.value for c in lstm.caption)


# == Click to unroll on the Gradient flow page ===============================================================

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
    from bptt_core.report.html import unroll_section_of
    from tests.dashboard.test_player_ui import report_html

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
