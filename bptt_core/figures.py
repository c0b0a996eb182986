"""Plotly figure builders: each takes plain numbers and returns a ``go.Figure``.

One template and one export config for every figure, so the dashboard, the command line and the
HTML report look alike: log colour bars with decade tick labels (1e-6, 1e-3, 1, ...), the raw
value in the hover, and the theory drawn on the picture.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
TEMPLATE.layout.update(
    font=dict(family=FONT, size=14),
    title=dict(font=dict(size=17), x=0.0, xanchor="left"),
    margin=dict(l=70, r=30, t=60, b=60),
    colorway=["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"],
)
LECTURE_SCALE = 1.5  # type size multiplier for a projector

# The Plotly modebar: PNG export at 3x scale, no logo. SVG export is the same button with
# format "svg"; pages offer it through the config's second variant.
PLOTLY_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 3, "filename": "bptt-explorer"},
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}
PLOTLY_CONFIG_SVG = {
    **PLOTLY_CONFIG,
    "toImageButtonOptions": {"format": "svg", "scale": 3, "filename": "bptt-explorer"},
}

HEAT_COLORSCALE = "RdBu_r"  # diverging around 1 (log10 = 0): blue vanishes, red explodes


def style(fig: go.Figure, lecture: bool = False, height: int | None = None) -> go.Figure:
    """Apply the shared template (and the projector scale) to any figure."""
    fig.update_layout(template=TEMPLATE)
    if height:
        fig.update_layout(height=height)
    if lecture:
        fig.update_layout(
            font=dict(size=round(14 * LECTURE_SCALE)), title=dict(font=dict(size=round(17 * LECTURE_SCALE)))
        )
    return fig


def fmt_power(x: float) -> str:
    """1e-06-style label for a raw value (never rounds 1e-120 to 0)."""
    if not math.isfinite(x):
        return "0" if x == 0 else str(x)
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.3e}"


def decade_ticks(lo: float, hi: float, max_ticks: int = 9) -> tuple[list[float], list[str]]:
    """Tick positions (in log10 units) at whole decades from lo to hi, labelled 1e-6, 1e-3, 1, ..."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0], ["1"]
    a, b = math.floor(lo), math.ceil(hi)
    step = max(1, math.ceil((b - a) / max_ticks))
    start = math.floor(a / step) * step
    vals = list(range(start, b + 1, step))
    return [float(v) for v in vals], [decade_label(v) for v in vals]


def decade_label(v: int) -> str:
    return "1" if v == 0 else ("10" if v == 1 else f"1e{v:+d}".replace("+", ""))


def _log_hover_text(L: np.ndarray) -> np.ndarray:
    """Raw-value strings for a matrix of log10 values (exact even where 10**L under/overflows)."""
    out = np.empty(L.shape, dtype=object)
    flat = L.ravel()
    res = out.ravel()
    for i, v in enumerate(flat):
        if np.isnan(v):
            res[i] = ""
        elif np.isneginf(v):
            res[i] = "0 (exactly)"
        else:
            e = math.floor(v)
            res[i] = f"{10 ** (v - e):.3f}e{e:+d}"
    return out


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
) -> go.Figure:
    """Heatmap of log10 values Z with a decade-labelled colour bar; the hover shows the raw value.

    ``mask``: where True, the cell is shown hatched grey (e.g. what truncation drops).
    -inf (exact zero) cells are shown as the bottom of the scale and said so in the hover.
    """
    Z = np.asarray(Z, dtype=float)
    finite = Z[np.isfinite(Z)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    shown = np.where(np.isneginf(Z), lo, Z)
    if mask is not None:
        shown = np.where(mask, np.nan, shown)
    tickvals, ticktext = decade_ticks(lo, hi)
    mid = 0.0 if lo < 0 < hi else None
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=x,
            y=y,
            colorscale=HEAT_COLORSCALE,
            zmid=mid,
            zmin=lo,
            zmax=hi,
            customdata=_log_hover_text(Z),
            hovertemplate=f"{hover_y} = %{{y}}<br>{hover_x} = %{{x}}<br>{hover_value} = %{{customdata}}<extra></extra>",
            colorbar=dict(title=dict(text=colorbar_title, side="right"), tickvals=tickvals, ticktext=ticktext),
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


def gradient_flow_heatmap(
    L: np.ndarray, norm="fro", block: str = "h", lag: bool = False, mask: np.ndarray | None = None
) -> go.Figure:
    """The gradient-flow matrix L[t, s] = log10 ||dh_t/dh_s|| (or its (t, k) lag view M[t, k])."""
    T = L.shape[0]
    steps = np.arange(1, T + 1)  # 1-indexed time, as in the equations
    name = "‖·‖_F" if norm == "fro" else "‖·‖₂"
    what = "∂c(t)/∂c(s)" if block == "c" else "∂h(t)/∂h(s)"
    if lag:
        return log_heatmap(
            L,
            x=np.arange(T),
            y=steps,
            title=f"Gradient flow by lag: {name} of {what.replace('(s)', '(t−k)')}",
            x_title="lag k = t − s (steps back)",
            y_title="time step t",
            colorbar_title=f"{name}",
            hover_x="k",
            hover_y="t",
            hover_value="norm",
            mask=mask,
        )
    return log_heatmap(
        L,
        x=steps,
        y=steps,
        title=f"Gradient flow: {name} of {what}",
        x_title="source step s",
        y_title="target step t",
        colorbar_title=f"{name}",
        hover_x="s",
        hover_y="t",
        hover_value="norm",
        mask=mask,
    )
