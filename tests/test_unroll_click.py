"""A click on a gradient-flow heatmap, through Streamlit's own selection plumbing, opens the clicked cell.

AppTest cannot click a Plotly chart, so the test sends what the browser sends: the chart's widget value,
the JSON selection state of Streamlit 1.67 (``{"selection": {"points": [...], ...}}``), which Streamlit
deserialises into the event ``st.plotly_chart(..., on_select="rerun")`` returns.
"""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

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


PLAYER_APP = """
import streamlit as st
from bptt_core.learning import player
from bptt_core.config import ModelConfig
from bptt_core.figures.player import player_heatmap_figure
from bptt_core.learning.training import TrainConfig, train

r = train(ModelConfig(seq_len=6, hidden_size=4, task="gaussian"), TrainConfig(steps=4, batch_size=2, snapshots=3))
fr = player.frames(r, n_lyapunov=1)
st.session_state["labels"] = [f.label for f in fr]
st.plotly_chart(player_heatmap_figure(fr), key="player")
"""


def test_the_players_frames_reach_the_browser_whole():
    """Streamlit hands the figure to Plotly.js with its frames, slider and play button: playing runs there."""
    at = AppTest.from_string(PLAYER_APP, default_timeout=120).run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    labels = at.session_state["labels"]
    assert [f["name"] for f in spec["frames"]] == labels and len(labels) == 3
    (slider,) = spec["layout"]["sliders"]
    assert [s["args"][0] for s in slider["steps"]] == [[n] for n in labels]
    play = spec["layout"]["updatemenus"][0]["buttons"][0]
    assert play["method"] == "animate" and play["args"][0] is None
