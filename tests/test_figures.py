"""Figure builders: titles, labelled axes, decade ticks, raw values in the hover, and the theory drawn
where the theory says; the HTML report is self-contained with plotly.js once."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from bptt_core import ModelConfig
from bptt_core.figures.heatmaps import gradient_flow_heatmap, stride_note
from bptt_core.figures.labels import decade_ticks, log_ticks, raw_label, short_label
from bptt_core.figures.profiles import contributions_figure, lag_profile_figure, loss_gradient_figure
from bptt_core.figures.spectra import eigenvalue_figure, lyapunov_figure, singular_values_figure
from bptt_core.figures.style import style
from bptt_core.figures.training import (
    comparison_figure,
    dh_heatmap_figure,
    grad_norm_history_figure,
    loss_history_figure,
)
from bptt_core.flow.summary import lag_view
from bptt_core.report.html import build_report


def arr(v) -> np.ndarray:
    return np.asarray(v, dtype=float)


def test_raw_label_is_exact_beyond_float_range():
    assert raw_label(-120 + math.log10(3.162)) == "3.162e-120"
    assert raw_label(400.0) == "1.000e+400"
    assert raw_label(float("-inf")) == "0 (exactly)"


@pytest.mark.parametrize(
    "value,text",
    [(7.151, "7.15"), (0.01234, "0.0123"), (1e-3, "0.001"), (9999.0, "1e4"), (123456.0, "1.23e5"), (9.9999e-5, "1e-4")],
)
def test_short_label_three_digits_scientific_only_outside_1e_3_to_1e4(value, text):
    assert short_label(math.log10(value)) == text
    assert short_label(-120 + math.log10(3.162)) == "3.16e-120"  # beyond float64's range


@pytest.mark.parametrize("lo,hi", [(-6.2, 0.3), (-120.0, 160.0), (0.0, 0.0), (-0.4, 0.4)])
def test_decade_ticks_cover_the_range_with_decade_labels(lo, hi):
    vals, text = decade_ticks(lo, hi)
    assert vals == sorted(vals) and all(float(v).is_integer() for v in vals)
    assert vals[0] <= math.floor(lo) + 1e-9 or vals[0] <= lo
    assert len(vals) <= 10
    for v, t in zip(vals, text, strict=True):
        assert t == ("1" if v == 0 else "10" if v == 1 else f"1e{int(v)}")


def _every_figure():
    L = np.full((6, 6), np.nan)
    for t in range(6):
        for s in range(t + 1):
            L[t, s] = -0.5 * (t - s)
    prof = -0.5 * np.arange(6.0)
    hist = pd.DataFrame(
        dict(step=range(5), loss=[3.0, 2.0, 1.0, 0.5, 0.2], grad_norm=[0.5, 2.0, 8.0, 0.3, 0.1],
             grad_norm_clipped=[0.5, 1.0, 1.0, 0.3, 0.1], clipped=[False, True, True, False, False], nonfinite=[False] * 5)
    )  # fmt: skip
    ev = np.array([0.5 + 0.5j, 0.5 - 0.5j, -0.9])
    df = pd.DataFrame(dict(variant=["full BPTT", "TBPTT(2, 2)", "RTRL"], memory_bytes=[100, 40, 900],
                           time_per_update_s=[1e-3, 5e-4, 1e-2], cosine=[1.0, 0.9, 1.0]))  # fmt: skip
    return {
        "heatmap": gradient_flow_heatmap(L),
        "lag heatmap": gradient_flow_heatmap(L, norm=2, lag=True),
        "lag profile": lag_profile_figure(prof, rate=-0.5, gamma_sigma1=0.5, horizon=4),
        "dL/dh": loss_gradient_figure(np.array([1e-9, 1e-5, 1.0])),
        "contributions": contributions_figure(np.array([1e-30, 1e-3, 2.0]), 2),
        "eigenvalues": eigenvalue_figure(ev, 0.9),
        "singular values": singular_values_figure(np.array([2.0, 1.0, 0.5]), 0.25),
        "lyapunov": lyapunov_figure(np.array([0.1, -0.5, -np.inf]), -0.4),
        "grad norms": grad_norm_history_figure({"unclipped": hist, "norm": hist}, 1.0, {"unclipped": 4}),
        "loss": loss_history_figure({"unclipped": hist}),
        "dh heatmap": dh_heatmap_figure(np.array([[1.0, 1e-3], [np.inf, 0.0]])),
        "comparison": comparison_figure(df),
    }


@pytest.mark.parametrize("name", list(_every_figure()))
def test_every_figure_has_a_title_and_labelled_axes(name):
    fig = _every_figure()[name]
    assert isinstance(fig, go.Figure)
    assert fig.layout.title.text
    if name != "diagram":
        axes = [a for a in (fig.layout.xaxis, fig.layout.yaxis) if a.title.text]
        assert len(axes) == 2 or name == "comparison", name


def test_log_heatmap_colour_bar_in_decades_and_raw_hover():
    L = np.array([[0.0, np.nan], [-120.5, 0.0]])
    fig = gradient_flow_heatmap(L)
    bar = fig.data[0].colorbar
    assert list(bar.ticktext)[-1] == "1" and all(t == "1" or t.startswith("1e-") for t in bar.ticktext)
    assert min(bar.tickvals) <= -120.5  # the colour bar reaches the smallest value
    assert fig.data[0].customdata[1][0] == "3.162e-121"


def test_lag_profile_draws_the_envelope_and_the_horizon():
    prof = np.array([1.0, 0.2, -0.6, -1.4, -2.2])
    fig = lag_profile_figure(prof, rate=-0.8, gamma_sigma1=0.5, horizon=3, threshold=1e-3)
    env = next(t for t in fig.data if t.name.startswith("bound"))
    np.testing.assert_allclose(arr(env.y), prof[0] + np.arange(5) * math.log10(0.5))
    assert any(s.type == "line" and s.x0 == 3 for s in fig.layout.shapes)  # the memory horizon
    assert all(t in ("1", "10") or t.startswith("1e") for t in fig.layout.yaxis.ticktext)


def test_singular_values_draw_one_over_gamma_and_eigenvalues_the_unit_circle():
    fig = singular_values_figure(np.array([3.0, 1.0]), gamma=0.25)
    assert any(s.type == "line" and s.y0 == 4.0 for s in fig.layout.shapes)
    eig = eigenvalue_figure(np.array([0.3 + 0.1j]), 0.32)
    circle = eig.data[0]
    np.testing.assert_allclose(np.hypot(arr(circle.x), arr(circle.y)), 1.0)
    assert eig.layout.yaxis.scaleanchor == "x"


def test_gradient_norm_history_marks_threshold_clips_and_divergence():
    _, fig = None, _every_figure()["grad norms"]
    assert any(s.type == "line" and s.y0 == 0.0 for s in fig.layout.shapes)  # log10(c = 1)
    clips = [t for t in fig.data if t.name and "clip fired" in t.name]
    assert len(clips) == 2 and len(clips[0].x) == 2
    assert any("diverged" in a.text for a in fig.layout.annotations)


def test_style_lecture_enlarges_type():
    fig = style(loss_gradient_figure(np.array([1.0, 2.0])), lecture=True)
    assert fig.layout.font.size > 14


def test_html_report_is_self_contained():
    html = build_report(ModelConfig(hidden_size=6, seq_len=10), k1k2=(3, 3))
    assert html.count("plotly.js v") == 1 or html.count('<script type="text/javascript">/**') == 1
    # The pages' own figures (bptt_core.report.panels): gradient flow 4, spectrum 3, truncation 2.
    assert html.count('class="plotly-graph-div"') == 4 + 3 + 2
    assert "http" not in html.split("<body>")[1].split("plotly")[0]  # nothing fetched before the figures
    assert "hidden_size&quot;: 6" in html
    with pytest.raises(ValueError, match="at least"):
        build_report(ModelConfig(task="copy", seq_len=2))


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


@pytest.mark.parametrize("lo,hi", [(0.903, 0.903), (-9.17e-11, 0.0), (0.95, 1.25), (-120.3, -120.1), (2.0, 2.6)])
def test_ticks_under_one_decade_are_readable(lo, hi):
    """A linear orthogonal RNN (every norm sqrt(H)), an IRNN (within 1e-10 of 1): at least one tick, labels
    distinct, each label the raw value at its position."""
    vals, text = log_ticks(lo, hi)
    assert len(vals) >= (1 if hi - lo < 1e-9 else 3) and len(set(text)) == len(text)
    for v, t in zip(vals, text, strict=True):
        assert lo - 1e-9 <= v <= hi + 1e-9 or hi - lo < 1e-9
        mant, _, exp = t.partition("e")
        value_log10 = math.log10(float(mant)) + (int(exp) if exp else 0)
        assert value_log10 == pytest.approx(v, abs=1e-3)


def test_constant_heatmap_has_a_ticked_colour_bar():
    L = np.tril(np.full((5, 5), 0.5 * math.log10(64)))
    L[np.triu_indices(5, 1)] = np.nan
    bar = gradient_flow_heatmap(L).data[0].colorbar
    assert len(bar.tickvals) >= 1 and "8" in bar.ticktext  # sqrt(64) = 8, the identity's norm


def test_lstm_cell_block_is_named_in_every_title():
    prof = np.array([0.0, -0.1, -0.2])
    assert "∂c(t)/∂c(t−k)" in lag_profile_figure(prof, rate=-0.1, block="c").layout.title.text
    L = np.array([[0.0, np.nan], [-0.1, 0.0]])
    assert "∂c(t)/∂c(s)" in gradient_flow_heatmap(L, block="c").layout.title.text
    assert "∂c(t)/∂c(t−k)" in gradient_flow_heatmap(L, block="c", lag=True).layout.title.text


def test_a_flat_decay_rate_is_labelled_as_a_factor_not_an_exponent_in_an_exponent():
    fig = lag_profile_figure(np.array([0.9, 0.9, 0.9, 0.9]), rate=-9.17e-11)
    fit = next(t for t in fig.data if t.name.startswith("fitted"))
    assert "×1 per step" in fit.name and "<sup>" not in fit.name


def test_clip_events_contrast_with_the_curves_and_identical_twins_stay_visible():
    fig = _every_figure()["grad norms"]  # "unclipped" and "norm" share one history: identical twins
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2 and np.array_equal(arr(lines[0].y), arr(lines[1].y), equal_nan=True)
    assert lines[0].line.dash != lines[1].line.dash and lines[0].line.width > lines[1].line.width
    curve_colours = {t.line.color for t in lines}
    for t in (t for t in fig.data if t.mode == "markers"):
        assert t.marker.color not in curve_colours and t.marker.line.color not in curve_colours
    first = [s for s in fig.layout.shapes if s.line.dash == "dashdot"]
    assert len(first) == 1 and first[0].x0 == 1  # the history's first clipped step
    assert any("first clip: step 1" in a.text for a in fig.layout.annotations)


def test_lecture_mode_enlarges_subplot_titles_and_labels_too():
    df = pd.DataFrame(dict(variant=["full BPTT", "RTRL"], memory_bytes=[100, 900], time_per_update_s=[1e-3, 1e-2],
                           cosine=[1.0, 1.0]))  # fmt: skip
    for fig in (comparison_figure(df),):
        style(fig, lecture=True)
        assert fig.layout.annotations and all(a.font.size >= 20 for a in fig.layout.annotations)
