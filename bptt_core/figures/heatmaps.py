"""Log-scale heatmaps: the gradient-flow matrix log10 ||dh_t/dh_s|| over (t, s) or the lag view (t, k),
its colour centred where the page says, its axes in real step numbers at any T, and the invisible
click targets that let a click open a cell's chain."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .labels import flow_symbol, log_hover_text, log_ticks, norm_symbol, ordinal
from .style import HEAT_COLORSCALE, style


def centred_colorscale(lo: float, hi: float, n: int = 11, centre: float = 0.0) -> list:
    """The part of the diverging scale that [lo, hi] covers when ``centre`` (a log10 value: 0 is a
    norm of 1) is its white middle: data all above it are only red, all below only blue, never
    recentred on the data's own range."""
    from plotly.colors import sample_colorscale

    m = max(abs(lo - centre), abs(hi - centre), 1e-12)
    a, b = (lo - centre + m) / (2 * m), (hi - centre + m) / (2 * m)
    pts = np.linspace(a, b, n)
    return [[i / (n - 1), c] for i, c in enumerate(sample_colorscale(HEAT_COLORSCALE, pts.tolist()))]


def log_heatmap(
    Z: np.ndarray,
    *,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    title: str,
    x_title: str,
    y_title: str,
    colorbar_title: str,
    hover_x: str = "x",
    hover_y: str = "y",
    hover_value: str = "value",
    mask: np.ndarray | None = None,
    centre: float = 0.0,
    zrange: tuple[float, float] | None = None,
) -> go.Figure:
    """Heatmap of log10 values Z with a decade-labelled colour bar; the hover shows the raw value.

    ``mask``: where True, the cell is shown hatched grey (e.g. what truncation drops).
    ``centre``: the log10 value drawn white (0: a norm of 1).
    -inf (exact zero) cells are shown as the bottom of the scale and said so in the hover.
    ``zrange``: (zmin, zmax) of the colour scale, e.g. one range shared by side-by-side heatmaps
    (:func:`bptt_core.figures.ranges.shared_range`); by default the data's own.
    """
    Z = np.asarray(Z, dtype=float)
    finite = Z[np.isfinite(Z)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if zrange is not None:  # one colour range for several heatmaps (compare, or a run's logged steps)
        z0, z1 = (float(v) for v in zrange)
        if not (math.isfinite(z0) and math.isfinite(z1) and z0 < z1):
            raise ValueError(f"zrange must be two finite numbers zmin < zmax, got {zrange!r}")
        lo, hi = min(lo, z0), max(hi, z1)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05  # a constant matrix (an orthogonal linear RNN): a narrow, ticked bar
    shown = np.where(np.isneginf(Z), lo, np.where(np.isposinf(Z), hi, Z))
    if mask is not None:
        shown = np.where(mask, np.nan, shown)
    tickvals, ticktext = log_ticks(lo, hi)
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=x,
            y=y,
            colorscale=centred_colorscale(lo, hi, centre=centre),
            zmin=lo,
            zmax=hi,
            customdata=log_hover_text(Z),
            hovertemplate=f"{hover_y} = %{{y}}<br>{hover_x} = %{{x}}<br>{hover_value} = %{{customdata}}<extra></extra>",
            colorbar=dict(title=dict(text=colorbar_title, side="top"), tickvals=tickvals, ticktext=ticktext),
        )
    )
    if mask is not None and mask.any():
        fig.add_trace(
            go.Heatmap(
                z=np.where(mask & ~np.isnan(Z), 1.0, np.nan),
                x=x,
                y=y,
                colorscale=[[0, "#d9d9d9"], [1, "#d9d9d9"]],
                showscale=False,
                hovertemplate=f"{hover_y} = %{{y}}<br>{hover_x} = %{{x}}<br>dropped by truncation<extra></extra>",
                name="dropped",
            )
        )
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title)
    fig.update_yaxes(autorange="reversed")
    return style(fig)


HEAT_CENTRES = ("identity", "one")  # white at the lag-0 norm (default), or at a norm of 1 (absolute)


def gradient_flow_heatmap(
    L: np.ndarray,
    norm="fro",
    block: str = "h",
    lag: bool = False,
    mask: np.ndarray | None = None,
    centre: str = "identity",
    max_cells: int = 300,
    zrange: tuple[float, float] | None = None,
) -> go.Figure:
    """The gradient-flow matrix L[t, s] = log10 ||dh_t/dh_s|| (or its (t, k) lag view M[t, k]).

    Matrices wider than ``max_cells`` are shown every ``stride``-th step (:func:`display_stride`),
    with the axes in the real step numbers kept. ``centre``: "identity" draws the lag-0 norm (the
    identity's: √H in Frobenius norm) white, so only what the Jacobians do is coloured; "one" draws
    a norm of 1 white (the absolute scale).
    """
    if centre not in HEAT_CENTRES:
        raise ValueError(f"centre must be one of {HEAT_CENTRES}, got {centre!r}")
    T = L.shape[0]
    idx = shown_steps(T, max_cells)  # 0-indexed rows (and columns) shown
    Ls = L[np.ix_(idx, idx)]
    steps = idx + 1  # 1-indexed time, as in the equations
    lag0 = L[:, 0] if lag else np.diagonal(L)
    lag0 = lag0[np.isfinite(lag0)]
    white = float(np.median(lag0)) if centre == "identity" and lag0.size else 0.0
    name = norm_symbol(norm)
    what = flow_symbol(block, lag)
    if lag:  # the same data indexed by k = t - s
        x, title, x_title, hover_x = idx, f"Gradient flow by lag: {name} of {what}", "lag k = t − s (steps back)", "k"
        y_title = "time step t"
    else:
        x, title, x_title, hover_x = steps, f"Gradient flow: {name} of {what}", "source step s", "s"
        y_title = "target step t"
    return log_heatmap(
        Ls,
        x=x,
        y=steps,
        title=title,
        x_title=x_title,
        y_title=y_title,
        colorbar_title=name,
        hover_x=hover_x,
        hover_y="t",
        hover_value="norm",
        mask=None if mask is None else mask[np.ix_(idx, idx)],
        centre=white,
        zrange=zrange,
    )


def shown_steps(T: int, max_cells: int = 300) -> np.ndarray:
    """The 0-indexed steps a strided heatmap shows: every ``stride``-th, and always the last."""
    return np.unique(np.r_[np.arange(0, T, display_stride(T, max_cells)), T - 1])


def stride_note(T: int, max_cells: int = 300) -> str | None:
    """What a page says under a strided heatmap (None when every step is shown)."""
    stride = display_stride(T, max_cells)
    if stride == 1:
        return None
    return (
        f"The heatmap shows every {ordinal(stride)} step (steps 1, {1 + stride}, {1 + 2 * stride}, …, and T = {T}); "
        "the CSV holds all of them."
    )


def display_stride(T: int, max_cells: int = 300) -> int:
    """Heatmaps wider than ``max_cells`` are shown every ``stride``-th step (the CSV has them all)."""
    return max(1, math.ceil(T / max_cells))


MAX_CLICK_TARGETS = 25_000  # invisible markers a clickable heatmap may carry (T = 400 shows 200 x 200 / 2)


def clickable_cells(fig: go.Figure, max_targets: int = MAX_CLICK_TARGETS) -> go.Figure:
    """Let a click on a cell of the figure's first heatmap select that cell in the browser.

    Plotly selects points of scatter-like traces only: a heatmap has none, so a click on one never becomes
    a selection (and Streamlit's ``on_select`` never hears it). This adds one invisible marker at the centre
    of every cell with a value (NaN cells, s > t, get none), carrying the cell's hover text; the heatmap's own
    hover is switched off so the marker's label is the one shown, and the nearest marker to the pointer is
    hovered and clicked wherever it is (``hoverdistance=-1``): a click anywhere in a cell selects it, with
    the cell's x and y (what :func:`dashboard.clicks.selected_cell` reads). Above ``max_targets`` cells the
    figure is left as it is (the page's typed cell still opens any cell).

    Plotly.js hovers and selects from the trace's data, not from the drawn markers, so only one of them is
    drawn (``maxdisplayed``): one SVG node instead of one per cell, which had made the browser's main thread
    spend ~1.3× as long on each step of the Gradient flow page (docs/benchmarks.md)."""
    hm = next((t for t in fig.data if t.type == "heatmap"), None)
    if hm is None:
        raise ValueError("fig must hold a heatmap (bptt_core.figures.gradient_flow_heatmap)")
    z = np.asarray(hm.z, dtype=float)
    rows, cols = np.nonzero(np.isfinite(z))
    if len(rows) > max_targets:
        return fig
    x, y = np.asarray(hm.x), np.asarray(hm.y)
    hover = np.asarray(hm.customdata, dtype=object)
    fig.add_trace(
        go.Scatter(
            x=x[cols],
            y=y[rows],
            mode="markers",
            marker=dict(size=6, opacity=0, color="#000", maxdisplayed=1),
            customdata=hover[rows, cols],
            hovertemplate=hm.hovertemplate,
            showlegend=False,
            name="cells (click to unroll)",
            selected=dict(marker=dict(opacity=0)),
            unselected=dict(marker=dict(opacity=0)),
        )
    )
    hm.hoverinfo = "skip"
    fig.update_layout(hovermode="closest", hoverdistance=-1)
    return fig
