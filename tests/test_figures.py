"""Figure builders: titles, labelled axes, decade ticks, raw values in the hover, and the theory drawn
where the theory says; the HTML report is self-contained with plotly.js once."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from bptt_core import ModelConfig
from bptt_core import figures as F
from bptt_core import report as R


def arr(v) -> np.ndarray:
    return np.asarray(v, dtype=float)


def test_raw_label_is_exact_beyond_float_range():
    assert F.raw_label(-120 + math.log10(3.162)) == "3.162e-120"
    assert F.raw_label(400.0) == "1.000e+400"
    assert F.raw_label(float("-inf")) == "0 (exactly)"


@pytest.mark.parametrize(
    "value,text",
    [(7.151, "7.15"), (0.01234, "0.0123"), (1e-3, "0.001"), (9999.0, "1e4"), (123456.0, "1.23e5"), (9.9999e-5, "1e-4")],
)
def test_short_label_three_digits_scientific_only_outside_1e_3_to_1e4(value, text):
    assert F.short_label(math.log10(value)) == text
    assert F.short_label(-120 + math.log10(3.162)) == "3.16e-120"  # beyond float64's range


@pytest.mark.parametrize("lo,hi", [(-6.2, 0.3), (-120.0, 160.0), (0.0, 0.0), (-0.4, 0.4)])
def test_decade_ticks_cover_the_range_with_decade_labels(lo, hi):
    vals, text = F.decade_ticks(lo, hi)
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
        "heatmap": F.gradient_flow_heatmap(L),
        "lag heatmap": F.gradient_flow_heatmap(L, norm=2, lag=True),
        "lag profile": F.lag_profile_figure(prof, rate=-0.5, gamma_sigma1=0.5, horizon=4),
        "dL/dh": F.loss_gradient_figure(np.array([1e-9, 1e-5, 1.0])),
        "contributions": F.contributions_figure(np.array([1e-30, 1e-3, 2.0]), 2),
        "eigenvalues": F.eigenvalue_figure(ev, 0.9),
        "singular values": F.singular_values_figure(np.array([2.0, 1.0, 0.5]), 0.25),
        "lyapunov": F.lyapunov_figure(np.array([0.1, -0.5, -np.inf]), -0.4),
        "grad norms": F.grad_norm_history_figure({"unclipped": hist, "norm": hist}, 1.0, {"unclipped": 4}),
        "loss": F.loss_history_figure({"unclipped": hist}),
        "dh heatmap": F.dh_heatmap_figure(np.array([[1.0, 1e-3], [np.inf, 0.0]])),
        "comparison": F.comparison_figure(df),
        "diagram": F.unrolled_diagram(),
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
    fig = F.gradient_flow_heatmap(L)
    bar = fig.data[0].colorbar
    assert list(bar.ticktext)[-1] == "1" and all(t == "1" or t.startswith("1e-") for t in bar.ticktext)
    assert min(bar.tickvals) <= -120.5  # the colour bar reaches the smallest value
    assert fig.data[0].customdata[1][0] == "3.162e-121"


def test_lag_profile_draws_the_envelope_and_the_horizon():
    prof = np.array([1.0, 0.2, -0.6, -1.4, -2.2])
    fig = F.lag_profile_figure(prof, rate=-0.8, gamma_sigma1=0.5, horizon=3, threshold=1e-3)
    env = next(t for t in fig.data if t.name.startswith("bound"))
    np.testing.assert_allclose(arr(env.y), prof[0] + np.arange(5) * math.log10(0.5))
    assert any(s.type == "line" and s.x0 == 3 for s in fig.layout.shapes)  # the memory horizon
    assert all(t in ("1", "10") or t.startswith("1e") for t in fig.layout.yaxis.ticktext)


def test_singular_values_draw_one_over_gamma_and_eigenvalues_the_unit_circle():
    fig = F.singular_values_figure(np.array([3.0, 1.0]), gamma=0.25)
    assert any(s.type == "line" and s.y0 == 4.0 for s in fig.layout.shapes)
    eig = F.eigenvalue_figure(np.array([0.3 + 0.1j]), 0.32)
    circle = eig.data[0]
    np.testing.assert_allclose(np.hypot(arr(circle.x), arr(circle.y)), 1.0)
    assert eig.layout.yaxis.scaleanchor == "x"


def test_gradient_norm_history_marks_threshold_clips_and_divergence():
    _, fig = None, _every_figure()["grad norms"]
    assert any(s.type == "line" and s.y0 == 0.0 for s in fig.layout.shapes)  # log10(c = 1)
    clips = [t for t in fig.data if t.name and t.name.endswith("clipped")]
    assert len(clips) == 2 and len(clips[0].x) == 2
    assert any("diverged" in a.text for a in fig.layout.annotations)


def test_style_lecture_enlarges_type():
    fig = F.style(F.loss_gradient_figure(np.array([1.0, 2.0])), lecture=True)
    assert fig.layout.font.size > 14


def test_html_report_is_self_contained():
    html = R.build_report(ModelConfig(hidden_size=6, seq_len=10), k1k2=(3, 3))
    assert html.count("plotly.js v") == 1 or html.count('<script type="text/javascript">/**') == 1
    # The pages' own figures (bptt_core.panels): gradient flow 4, spectrum 3, truncation 2.
    assert html.count('class="plotly-graph-div"') == 4 + 3 + 2
    assert "http" not in html.split("<body>")[1].split("plotly")[0]  # nothing fetched before the figures
    assert "hidden_size&quot;: 6" in html
    with pytest.raises(ValueError, match="at least"):
        R.build_report(ModelConfig(task="copy", seq_len=2))


@pytest.mark.parametrize("lo,hi,reddish", [(0.5, 7.0, True), (-9.0, -1.0, False)])
def test_heatmap_colours_are_anchored_at_a_norm_of_one(lo, hi, reddish):
    """Growing norms are red and shrinking ones blue whatever the data's range (white = 1)."""
    L = np.array([[hi, np.nan], [lo, hi]])
    scale = F.gradient_flow_heatmap(L).data[0].colorscale
    for _, c in scale:
        r, _, b = (int(v) for v in c[4:-1].split(","))
        assert (r >= b) == reddish, scale
