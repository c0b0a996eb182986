"""The gradient-flow heatmap (bptt_core.figures.heatmaps): its colour bar in decades, raw values in the
hover, white at a norm of one, real step numbers when strided, a checked zrange, and one selectable marker
per cell."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from bptt_core.figures.heatmaps import clickable_cells, gradient_flow_heatmap, stride_note
from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.flow.summary import lag_view
from dashboard.clicks import selected_cell
from tests.helpers.unroll import T, _event, _model, _x


def test_log_heatmap_colour_bar_in_decades_and_raw_hover():
    L = np.array([[0.0, np.nan], [-120.5, 0.0]])
    fig = gradient_flow_heatmap(L)
    bar = fig.data[0].colorbar
    assert list(bar.ticktext)[-1] == "1" and all(t == "1" or t.startswith("1e-") for t in bar.ticktext)
    assert min(bar.tickvals) <= -120.5  # the colour bar reaches the smallest value
    assert fig.data[0].customdata[1][0] == "3.162e-121"


@pytest.mark.parametrize("lo,hi,reddish", [(0.5, 7.0, True), (-9.0, -1.0, False)])
def test_heatmap_colours_are_anchored_at_a_norm_of_one(lo, hi, reddish):
    """On the absolute scale, growing norms are red and shrinking ones blue whatever the data's range (white = 1)."""
    L = np.array([[hi, np.nan], [lo, hi]])
    scale = gradient_flow_heatmap(L, centre="one").data[0].colorscale
    for _, c in scale:
        r, _, b = (int(v) for v in c[4:-1].split(","))
        assert (r >= b) == reddish, scale


def _rgb(c: str) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in c[4:-1].split(","))
    return r, g, b


def _colour_at(fig, value: float) -> tuple[int, int, int]:
    """The colour the heatmap paints ``value`` with (nearest stop of its colour scale)."""
    h = fig.data[0]
    pos = (value - h.zmin) / (h.zmax - h.zmin)
    return _rgb(min(h.colorscale, key=lambda st: abs(st[0] - pos))[1])


@pytest.mark.parametrize("norm,lag", [("fro", False), ("fro", True), (2, False)])
def test_by_default_the_identity_is_neutral_and_decay_is_blue(norm, lag):
    """A vanishing network at the defaults: the diagonal (the identity, sqrt(H) in Frobenius norm) is white,
    everything off it blue; nothing reads as exploding."""
    T, H = 12, 64
    lag0 = 0.5 * math.log10(H) if norm == "fro" else 0.0
    L = np.full((T, T), np.nan)
    for t in range(T):
        for s_ in range(t + 1):
            L[t, s_] = lag0 - 0.3 * (t - s_)
    M = lag_view(L) if lag else L
    fig = gradient_flow_heatmap(M, norm, lag=lag)
    r, g, b = _colour_at(fig, lag0)
    assert min(r, g, b) > 230  # white
    for _, c in fig.data[0].colorscale:
        r, _, b = _rgb(c)
        assert r <= b, "a norm below the identity's must never be drawn red"


def test_at_T_400_the_strided_heatmap_keeps_the_real_step_numbers():
    T = 400
    L = np.tril(-0.01 * np.subtract.outer(np.arange(T), np.arange(T)).astype(float))
    L[np.triu_indices(T, 1)] = np.nan
    fig = gradient_flow_heatmap(L, mask=np.tril(np.ones((T, T), bool), -50))
    h = fig.data[0]
    y, x = np.asarray(h.y), np.asarray(h.x)
    assert y[0] == 1 and y[-1] == T and x[0] == 1 and x[-1] == T  # steps 1 .. 400, not 1 .. 200
    assert len(y) <= 301 and np.all(np.diff(y) > 0)
    z = np.asarray(h.z, dtype=float)
    i, j = 100, 95  # a shown (unmasked) cell keeps its own value: row y[i], column x[j]
    assert z[i, j] == pytest.approx(L[y[i] - 1, x[j] - 1])
    grey = fig.data[1]  # the mask is strided with the same steps
    np.testing.assert_array_equal(np.asarray(grey.y), y)
    lag = gradient_flow_heatmap(lag_view(L), lag=True)
    assert np.asarray(lag.data[0].x)[-1] == T - 1  # lags 0 .. T - 1
    assert "every 2nd step" in stride_note(T) and stride_note(300) is None


def test_constant_heatmap_has_a_ticked_colour_bar():
    L = np.tril(np.full((5, 5), 0.5 * math.log10(64)))
    L[np.triu_indices(5, 1)] = np.nan
    bar = gradient_flow_heatmap(L).data[0].colorbar
    assert len(bar.tickvals) >= 1 and "8" in bar.ticktext  # sqrt(64) = 8, the identity's norm


# == One selectable marker per cell (click to unroll) ========================================================


@pytest.mark.parametrize("lag", [False, True])
def test_clickable_cells_put_one_selectable_marker_on_every_cell_with_its_hover(lag):
    """A heatmap has no selectable points in Plotly.js (a click on it never reaches Streamlit's on_select):
    the page's heatmap carries one invisible marker per cell with a value, at that cell's x and y."""
    rnn, x = _model("elman-tanh"), _x()
    L = jacobian_log_norms(rnn, x)
    fig = clickable_cells(gradient_flow_heatmap(L, lag=lag))
    hm, dots = fig.data
    assert dots.type == "scatter" and dots.mode == "markers" and dots.marker.opacity == 0
    # the browser draws one of them (hover and click read the data, not the drawn nodes: the browser test
    # clicks a cell), so a step of the page redraws one node where it redrew T(T+1)/2
    assert dots.marker.maxdisplayed == 1
    assert hm.hoverinfo == "skip" and dots.hovertemplate == hm.hovertemplate
    assert fig.layout.hoverdistance == -1
    z = np.asarray(hm.z, dtype=float)
    rows, cols = np.nonzero(np.isfinite(z))
    assert len(dots.x) == len(rows) == T * (T + 1) // 2  # the lower triangle, every cell once
    hover = np.asarray(hm.customdata, dtype=object)
    for xv, yv, text in zip(dots.x, dots.y, dots.customdata, strict=True):
        i, j = list(hm.y).index(yv), list(hm.x).index(xv)
        assert np.isfinite(z[i, j]) and text == hover[i, j]
        t, s = selected_cell(_event({"x": xv, "y": yv}), T, lag=lag)  # what a click on the marker opens
        assert t + 1 == yv and (s + 1 == xv if not lag else t - s == xv)
    small = gradient_flow_heatmap(L)
    assert len(clickable_cells(small, max_targets=10).data) == 1  # too many cells: left as it is
    with pytest.raises(ValueError, match="heatmap"):
        clickable_cells(go.Figure())


# == A checked colour range ==================================================================================


def test_zrange_is_validated():
    L = np.zeros((2, 2))
    with pytest.raises(ValueError, match="zrange"):
        gradient_flow_heatmap(L, zrange=(1.0, 1.0))
    with pytest.raises(ValueError, match="zrange"):
        gradient_flow_heatmap(L, zrange=(0.0, float("inf")))
