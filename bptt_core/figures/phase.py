"""The phase diagram: a measure over one or two swept settings, the measured lambda_1 = 0 boundary and
the mean-field line chi_1 = 1 (Poole et al. 2016)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .style import style

MEASURE_LABELS = {
    "lyapunov": "top Lyapunov exponent λ₁ (log10 per step)",
    "decay_rate": "decay rate of ‖∂h_t/∂h_{t−k}‖ (log10 per step)",
    "memory_horizon": "memory horizon (steps to 1e-3)",
    "sigma1_gamma": "γσ₁",
    "trainability": "final training loss",
}


AXIS_LABELS = {
    "gain": "gain g",
    "spectral_radius": "spectral radius ρ",
    "input_scale": "input scale",
    "bias_scale": "bias scale σ_b",
    "hidden_size": "hidden units H",
    "seq_len": "sequence length T",
}


CENTRED_MEASURES = ("lyapunov", "decay_rate")  # diverging colours around 0 (order blue, chaos red)


def phase_diagram(
    summary,
    x: str,
    y: str | None,
    measure: str,
    stat: str = "mean",
    lyapunov=None,
    theory=None,
    theory_axes: tuple | None = None,
    edge: float | None = None,
    seeds: int = 1,
) -> go.Figure:
    """The grid coloured by ``measure`` (its seed ``stat``: "mean" or "std"), with the measured
    order/chaos boundary (the λ₁ = 0 contour of ``lyapunov``, a seed-mean summary) and the
    mean-field line ``theory`` (a frame with columns ``theory_axes`` = (gain axis, other axis)).

    ``summary``: a frame with the axis columns and ``mean``, ``std`` (bptt_core.sweeps.phase.summarise).
    ``edge``: the edge finder's gain, marked when the gain is an axis.
    """
    label = MEASURE_LABELS.get(measure, measure)
    what = label if stat == "mean" else f"spread (std over seeds) of {label}"
    fig = go.Figure()
    if y is None:
        s = summary.sort_values(x)
        xs, m, sd = s[x].to_numpy(), s["mean"].to_numpy(), s["std"].to_numpy()
        if seeds > 1:
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([m + sd, (m - sd)[::-1]]), fill="toself", mode="lines",
                    fillcolor="rgba(31,119,180,0.18)", line=dict(width=0), name="± 1 std over seeds", hoverinfo="skip",
                )
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=xs, y=m, mode="lines+markers", name=f"mean over {seeds} seed(s)",
                       customdata=sd, hovertemplate=f"{x} = %{{x:.4g}}<br>mean %{{y:.4g}} ± %{{customdata:.3g}}<extra></extra>")
        )  # fmt: skip
        if measure == "lyapunov":
            fig.add_hline(y=0, line=dict(color="#333", dash="dash"), annotation_text="λ₁ = 0: order | chaos")
        if theory is not None and theory_axes and theory_axes[0] == x:
            g = float(theory[x].iloc[0])
            if math.isfinite(g):
                fig.add_vline(
                    x=g, line=dict(color="#2ca02c", width=2), annotation_text=f"mean field χ₁ = 1: {x} = {g:.3g}"
                )
        if edge is not None and x == "gain":
            fig.add_vline(x=edge, line=dict(color="#9467bd", dash="dot"), annotation_text=f"edge finder: {edge:.4g}",
                          annotation_position="bottom right")  # fmt: skip
        fig.update_layout(title=f"{what} against {AXIS_LABELS.get(x, x)}", xaxis_title=AXIS_LABELS.get(x, x),
                          yaxis_title=label)  # fmt: skip
        return style(fig)
    grid = summary.pivot(index=y, columns=x, values=stat)  # (ny, nx)
    z = grid.to_numpy()
    finite = z[np.isfinite(z)]
    kw = {}
    if measure in CENTRED_MEASURES and stat == "mean" and finite.size:
        r = float(np.abs(finite).max()) or 1.0
        kw = dict(colorscale="RdBu_r", zmin=-r, zmax=r, zmid=0)
    else:
        kw = dict(colorscale="Viridis")
    fig.add_trace(
        go.Heatmap(
            x=grid.columns.to_numpy(), y=grid.index.to_numpy(), z=z, name=measure, **kw,
            colorbar=dict(title=dict(text=measure if stat == "mean" else f"std {measure}", side="top")),
            hoverinfo="skip",  # the grid points' markers above carry the hover (and take the click)
        )
    )  # fmt: skip
    # Transparent markers on the grid points: what a click selects (a heatmap cell is not a point).
    gx, gy = np.meshgrid(grid.columns.to_numpy(), grid.index.to_numpy())
    fig.add_trace(
        go.Scatter(
            x=gx.ravel(), y=gy.ravel(), mode="markers", marker=dict(size=14, color="rgba(0,0,0,0.01)"),
            customdata=z.ravel(), name="grid points (click to open)", showlegend=False,
            hovertemplate=f"{x} = %{{x:.4g}}<br>{y} = %{{y:.4g}}<br>{stat} {measure} = %{{customdata:.4g}}"
            "<br>click: open this network<extra></extra>",
        )
    )  # fmt: skip
    if lyapunov is not None:
        lg = lyapunov.pivot(index=y, columns=x, values="mean")
        fig.add_trace(
            go.Contour(
                x=lg.columns.to_numpy(), y=lg.index.to_numpy(), z=lg.to_numpy(), name="measured boundary λ₁ = 0",
                contours=dict(start=0, end=0, size=1, coloring="none"), line=dict(color="black", width=3),
                showscale=False, showlegend=True, hoverinfo="skip",
            )
        )  # fmt: skip
    if theory is not None and theory_axes:
        gain_axis, other = theory_axes
        tx, ty = (theory[gain_axis], theory[other]) if gain_axis == x else (theory[other], theory[gain_axis])
        fig.add_trace(
            go.Scatter(x=tx, y=ty, mode="lines", line=dict(color="#2ca02c", width=3, dash="dash"),
                       name="mean-field boundary χ₁ = 1", hoverinfo="skip")
        )  # fmt: skip
    if edge is not None and "gain" in (x, y):
        add = fig.add_vline if x == "gain" else fig.add_hline
        add(edge, line=dict(color="#9467bd", dash="dot"), annotation_text=f"edge finder: gain {edge:.4g}")
    fig.update_layout(
        title=f"{what}",
        hovermode="closest",
        clickmode="event+select",
        xaxis_title=AXIS_LABELS.get(x, x),
        yaxis_title=AXIS_LABELS.get(y, y),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        margin=dict(b=120),
    )
    fig.update_xaxes(range=[float(grid.columns.min()), float(grid.columns.max())])
    fig.update_yaxes(range=[float(grid.index.min()), float(grid.index.max())])
    return style(fig)
