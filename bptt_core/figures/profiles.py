"""Line charts read off the gradient-flow matrix: the norm against lag with the decay fit, the
Pascanu bound and the mean-field prediction; ||dL/dh_t|| along the sequence; the per-step terms of
dl/dW_hh; a stack's depth x time reach."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .heatmaps import log_heatmap
from .labels import (
    decade_axis,
    flow_symbol,
    fmt_power,
    norm_symbol,
    raw_labels,
    safe_log10,
    threshold_label,
)
from .style import style


def lag_profile_figure(
    profile: np.ndarray,
    *,
    rate: float | None = None,
    gamma_sigma1: float | None = None,
    horizon: int | None = None,
    threshold: float = 1e-3,
    norm="fro",
    compare: dict[str, np.ndarray] | None = None,
    label: str = "this model",
    block: str = "h",
) -> go.Figure:
    """Mean log10 ||dh_t/dh_{t-k}|| (or the LSTM's dc_t/dc_{t-k}: ``block``) against lag k, with the fitted decay rate, the theoretical
    envelope (gamma sigma_1)^k times the lag-0 norm, and the memory horizon marked.

    ``compare``: more profiles (name -> log10 profile) drawn dotted, e.g. an LSTM against an RNN.
    """
    prof = np.asarray(profile, dtype=float)
    k = np.arange(len(prof))
    name = norm_symbol(norm)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=k,
            y=prof,
            mode="lines+markers",
            marker=dict(size=5),
            name=f"measured ({label})",
            customdata=raw_labels(prof),
            hovertemplate="lag k = %{x}<br>mean norm = %{customdata}<extra></extra>",
        )
    )
    shown = [prof]
    use = (k >= 1) & np.isfinite(prof)
    if rate is not None and np.isfinite(rate) and use.sum() >= 2:
        slope, icpt = np.polyfit(k[use], prof[use], 1)
        fit = icpt + slope * k
        shown.append(fit)
        fig.add_trace(
            go.Scatter(
                x=k,
                y=fit,
                mode="lines",
                line=dict(dash="dash", color="#2ca02c"),
                name=f"fitted: ×{10**rate:.4g} per step (log10 slope {rate:.3g})",
                customdata=raw_labels(fit),
                hovertemplate="lag k = %{x}<br>fit = %{customdata}<extra></extra>",
            )
        )
    if gamma_sigma1 is not None and gamma_sigma1 > 0 and np.isfinite(prof[0]):
        env = prof[0] + k * math.log10(gamma_sigma1)
        shown.append(env)
        fig.add_trace(
            go.Scatter(
                x=k,
                y=env,
                mode="lines",
                line=dict(dash="dot", color="#d62728", width=2),
                name=f"bound (γσ<sub>1</sub>)<sup>k</sup>, γσ<sub>1</sub> = {gamma_sigma1:.3g}",
                customdata=raw_labels(env),
                hovertemplate="lag k = %{x}<br>(γσ<sub>1</sub>)<sup>k</sup> bound = %{customdata}<extra></extra>",
            )
        )
    for i, (cname, cprof) in enumerate((compare or {}).items()):
        cprof = np.asarray(cprof, dtype=float)
        shown.append(cprof)
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(cprof)),
                y=cprof,
                mode="lines",
                line=dict(dash="longdash", color=["#9467bd", "#ff7f0e", "#17becf"][i % 3], width=2.5),
                name=f"measured ({cname})",
                customdata=raw_labels(cprof),
                hovertemplate=f"{cname}<br>lag k = %{{x}}<br>mean norm = %{{customdata}}<extra></extra>",
            )
        )
    all_v = np.concatenate([s[np.isfinite(s)] for s in shown]) if shown else np.zeros(1)
    # Keep the envelope from squashing the data: clip the view to the data range padded by 3 decades.
    data_v = prof[np.isfinite(prof)]
    if data_v.size:
        lo = max(all_v.min(), data_v.min() - 3) if all_v.size else data_v.min()
        hi = min(all_v.max(), data_v.max() + 3) if all_v.size else data_v.max()
        fig.update_yaxes(range=[lo - 0.3, hi + 0.3])
        all_v = np.array([lo, hi])
    if horizon is not None:
        fig.add_vline(x=horizon, line=dict(color="#555", dash="dash"))
        fig.add_annotation(
            x=horizon,
            y=1,
            yref="paper",
            text=f"memory horizon k = {horizon}<br>(norm < {threshold_label(threshold)} × lag 0)",
            showarrow=False,
            xanchor="right" if horizon > 0.6 * (len(prof) - 1) else "left",
            yanchor="top",
            bgcolor="rgba(255,255,255,0.8)",
        )
    fig.update_layout(
        title=f"Gradient norm against lag k: {name} of {flow_symbol(block, lag=True)}",
        xaxis_title="lag k = t − s (steps); norm averaged over t",
        legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0),
    )
    decade_axis(fig, all_v, "y", title=f"{name} (log scale)")
    return style(fig)


def loss_gradient_figure(norms: np.ndarray, loss_on: str = "last") -> go.Figure:
    """||dL/dh_t|| along the sequence (log scale)."""
    g = safe_log10(norms)
    t = np.arange(1, len(g) + 1)
    fig = go.Figure(
        go.Scatter(
            x=t,
            y=np.where(np.isneginf(g), np.nan, g),
            mode="lines+markers",
            marker=dict(size=5),
            name="‖∂L/∂h<sub>t</sub>‖",
            customdata=[fmt_power(float(v)) for v in np.asarray(norms, dtype=float)],
            hovertemplate="t = %{x}<br>‖∂L/∂h<sub>t</sub>‖ = %{customdata}<extra></extra>",
        )
    )
    where = "T" if loss_on == "last" else "every t"  # short: the plot may be half a column wide
    fig.update_layout(title="‖∂L/∂h(t)‖ by step t", xaxis_title=f"step t (loss at {where})", showlegend=False)
    decade_axis(fig, g, "y", title="‖∂L/∂h(t)‖ (log scale)")
    return style(fig)


def contributions_figure(norms: np.ndarray, t: int) -> go.Figure:
    """Frobenius norm of each per-step term of dl_t/dW_hh (t 0-indexed, shown 1-indexed)."""
    g = safe_log10(norms)
    steps = np.arange(1, len(g) + 1)
    finite = np.isfinite(g)
    base = (g[finite].min() - 0.5) if finite.any() else -1.0
    fig = go.Figure(
        go.Bar(
            x=steps,
            y=np.where(finite, g - base, 0.0),
            base=base,
            marker_color="#1f77b4",
            customdata=[fmt_power(float(v)) for v in np.asarray(norms, dtype=float)],
            hovertemplate="step i = %{x}<br>‖term i‖<sub>F</sub> = %{customdata}<extra></extra>",
            name="term norm",
        )
    )
    fig.update_layout(
        title=f"Terms of ∂ℓ({t + 1})/∂W<sub>hh</sub>",
        xaxis_title="step i of the term",
        showlegend=False,
    )
    decade_axis(fig, g, "y", title="‖term‖<sub>F</sub> (log scale)")
    return style(fig)


def layer_reach_figure(R: np.ndarray, t: int | None = None) -> go.Figure:
    """The depth x time picture of a stack: log10 ||dh^top_t/dh^i_s|| for layer i (rows, the top first)
    and step s (columns), 1-indexed as on the other heatmaps. ``R``: :func:`bptt_core.flow.jacobians.layer_reach`."""
    R = np.asarray(R, dtype=float)
    layers, T = R.shape
    t = T - 1 if t is None else t
    return log_heatmap(
        R[::-1],
        x=np.arange(1, T + 1),
        y=[f"layer {i}" + (" (top)" if i == layers - 1 else "") for i in range(layers - 1, -1, -1)],
        title=f"How much of a change at (layer i, step s) reaches the top layer's h at step {t + 1}",
        x_title="step s",
        y_title="layer i",
        colorbar_title=f"‖∂h<sup>top</sup><sub>{t + 1}</sub>/∂h<sup>i</sup><sub>s</sub>‖",
        hover_x="s",
        hover_y="layer",
        hover_value="norm",
    )
