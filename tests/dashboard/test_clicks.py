"""Clicks (dashboard/clicks.py): a click on a heatmap or on the phase map, as Streamlit reports it, read
back as the clicked cell or point.

AppTest cannot click a Plotly chart, so the AppTest case sends what the browser sends: the chart's widget
value, the JSON selection state of Streamlit 1.67 (``{"selection": {"points": [...], ...}}``), which
Streamlit deserialises into the event ``st.plotly_chart(..., on_select="rerun")`` returns."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from bptt_core.figures.heatmaps import gradient_flow_heatmap
from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.flow.unroll import unroll
from dashboard.clicks import heatmap_cell, selected_cell, selected_point
from tests.helpers.unroll import T, _event, _model, _x


def test_heatmap_cell_converts_the_clicked_1_indexed_point():
    rnn, x = _model("elman-tanh"), _x()
    L = jacobian_log_norms(rnn, x)
    fig = gradient_flow_heatmap(L)
    hm = fig.data[0]
    # a click reports the axis values: x = source step s (1-indexed), y = target step t (1-indexed)
    row, col = 5, 2
    t, s = heatmap_cell(hm.y[row], hm.x[col], T)
    assert (t, s) == (row, col) and hm.z[row][col] == L[t, s]
    assert abs(unroll(rnn, x, t, s).value - hm.z[row][col]) <= 1e-9
    for bad in [(2, 3), (0, 1), (T + 1, 1), (3, 0), (2.5, 1)]:
        with pytest.raises(ValueError, match="t|s"):
            heatmap_cell(*bad, T)


def test_selected_cell_reads_streamlits_click_event():
    T_ = 10
    click = {"curve_number": 0, "point_number": [5, 2], "point_index": [5, 2], "x": 3, "y": 6, "z": -0.4}
    assert selected_cell(_event(click), T_) == (5, 2)  # y = t + 1, x = s + 1
    assert selected_cell(_event(click)["selection"], T_) == (5, 2)  # the selection alone
    assert selected_cell(_event({"x": 1.0, "y": 2.0}, {"x": 4, "y": 9}), T_) == (8, 3)  # the last point counts
    assert selected_cell(_event(), T_) is None and selected_cell(None, T_) is None
    assert selected_cell({"selection": {"points": [], "point_indices": []}}, T_) is None
    # the lag view: x is the lag k = t - s (0-indexed), y the 1-indexed t
    assert selected_cell(_event({"x": 2, "y": 6}), T_, lag=True) == (5, 3)
    with pytest.raises(ValueError, match="s must not exceed t"):
        selected_cell(_event({"x": 7, "y": 3}), T_)  # the empty upper triangle
    with pytest.raises(ValueError, match="k"):
        selected_cell(_event({"x": 7, "y": 3}), T_, lag=True)  # a lag longer than t
    with pytest.raises(ValueError, match="x and y"):
        selected_cell(_event({"curve_number": 0}), T_)


def test_a_click_on_the_rendered_heatmap_opens_the_clicked_value():
    """The point Plotly reports for cell (row, col) of the heatmap: its x and y are the cell's axis values."""
    rnn, x = _model("nn.GRU"), _x()
    L = jacobian_log_norms(rnn, x)
    hm = gradient_flow_heatmap(L).data[0]
    for row, col in [(6, 0), (3, 3), (5, 4)]:
        t, s = selected_cell(_event({"x": hm.x[col], "y": hm.y[row], "z": hm.z[row][col]}), T)
        assert abs(unroll(rnn, x, t, s).value - hm.z[row][col]) <= 1e-9
    lag = gradient_flow_heatmap(L, lag=True).data[0]
    row, col = 6, 2  # t = 6, k = 2: s = 4
    t, s = selected_cell(_event({"x": lag.x[col], "y": lag.y[row]}), T, lag=True)
    assert (t, s) == (6, 4) and abs(unroll(rnn, x, t, s).value - L[6, 4]) <= 1e-9


# == A click through Streamlit's own selection plumbing ======================================================

APP = """
import streamlit as st
import torch
from bptt_core.figures.heatmaps import gradient_flow_heatmap
from bptt_core.figures.player import player_heatmap_figure
from bptt_core.figures.unroll import unroll_chain_figure
from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.models.recurrent import ElmanRNN
from bptt_core.flow.unroll import unroll
from dashboard.clicks import selected_cell

torch.manual_seed(0)
rnn = ElmanRNN(2, 4).double()
x = torch.randn(8, 2, dtype=torch.float64)
L = jacobian_log_norms(rnn, x)
event = st.plotly_chart(gradient_flow_heatmap(L), key="gf", on_select="rerun", selection_mode="points")
cell = selected_cell(event, L.shape[0])
if cell is not None:
    u = unroll(rnn, x, *cell)
    st.session_state["clicked"] = (cell, u.value, float(L[cell]))
    st.plotly_chart(unroll_chain_figure(u), key="chain")
"""


def _click(at: AppTest, key_suffix: str, point: dict) -> AppTest:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key_suffix))
    states = at._tree.get_widget_states()
    w = states.widgets.add()
    w.id = chart.proto.id
    w.string_value = json.dumps({"selection": {"points": [point], "point_indices": [], "box": [], "lasso": []}})
    return at._run(states)


def test_a_click_through_streamlit_opens_the_clicked_cell():
    at = AppTest.from_string(APP, default_timeout=120).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1 and "clicked" not in at.session_state
    _click(at, "-gf", {"curve_number": 0, "point_number": [5, 2], "x": 3, "y": 6, "z": 0.0})
    assert not at.exception
    (t, s), value, heat = at.session_state["clicked"]
    assert (t, s) == (5, 2) and abs(value - heat) <= 1e-9
    assert len(at.get("plotly_chart")) == 2
    title = json.loads(at.get("plotly_chart")[1].proto.spec)["layout"]["title"]["text"]
    assert title.startswith("∂h(6)/∂h(3) unrolled")


# == A click on the phase map ================================================================================


def test_a_clicked_point_is_read_back_in_the_axes_units():
    event = {"selection": {"points": [{"x": 1.25, "y": 31.6}]}}
    assert selected_point(event, ["gain", "hidden_size"]) == {"gain": 1.25, "hidden_size": 32}
    assert selected_point({"selection": {"points": []}}, ["gain"]) is None
    assert selected_point(None, ["gain"]) is None
