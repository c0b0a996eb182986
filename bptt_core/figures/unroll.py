"""Click to unroll: one cell's chain of step Jacobians factor by factor (running norm, singular values,
saturated units, slopes), the recurrent matrix's non-normality ||W^k|| against rho^k, and the term of
dl_t/dW_hh through h_s."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .labels import decade_axis, norm_symbol, raw_label, raw_labels, safe_log10
from .style import style


def _unroll_x(u) -> np.ndarray:
    """1-indexed step after each factor: s+1 (nothing multiplied yet), s+2, ..., t+1."""
    return np.arange(u.s + 1, u.t + 2)


def unroll_chain_figure(u) -> go.Figure:
    """The running product ||J_t'...J_{s'+1}|| factor by factor (it ends at the clicked value), the
    product of the factors' norms above it (submultiplicativity), and each factor's norm below."""
    from plotly.subplots import make_subplots

    name = norm_symbol(u.norm)
    t1, s1 = u.t + 1, u.s + 1
    x = _unroll_x(u)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.08)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=u.running_log10,
            mode="lines+markers",
            name=f"running product {name}",
            customdata=raw_labels(u.running_log10),
            line=dict(color="#1f77b4", width=2.5),
            hovertemplate="after J<sub>%{x}</sub><br>‖product‖ = %{customdata}<extra></extra>",
        ),
        1,
        1,
    )
    if len(u.bound_log10):
        fig.add_trace(
            go.Scatter(
                x=x[1:],
                y=u.bound_log10,
                mode="lines",
                line=dict(color="#d62728", dash="dash"),
                name="product of the factors' norms (upper bound)",
                customdata=raw_labels(u.bound_log10),
                hovertemplate="bound after J<sub>%{x}</sub> = %{customdata}<extra></extra>",
            ),
            1,
            1,
        )
        f = u.factor_log10_norms
        fig.add_trace(
            go.Bar(
                x=x[1:],
                y=np.where(np.isfinite(f), f, np.nan),
                name=f"{name} of each factor J<sub>i</sub>",
                marker_color=np.where(f > 0, "#d62728", "#1f77b4"),
                customdata=raw_labels(f),
                hovertemplate="‖J<sub>%{x}</sub>‖ = %{customdata}<extra></extra>",
            ),
            2,
            1,
        )
    fig.add_hline(y=0, line=dict(color="#555", width=1), row=2, col=1)
    fig.update_layout(
        title=f"∂h({t1})/∂h({s1}) unrolled: {name} = {raw_label(u.value)} after {u.t - u.s} factors",
        legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    )
    fig.update_xaxes(title_text="step i of the last factor J<sub>i</sub> multiplied in", row=2, col=1)
    decade_axis(fig, np.concatenate([u.running_log10, u.bound_log10]), "y", title=f"{name} (log scale)")
    fig.update_yaxes(title_text="‖J<sub>i</sub>‖ (log10)", row=2, col=1)
    return style(fig)


def unroll_singular_values_figure(u) -> go.Figure:
    """All singular values of every factor J_i (log scale), with σ = 1 marked: above it a factor
    stretches some direction, below it shrinks every direction."""
    S = u.factor_singular_values
    x = _unroll_x(u)[1:]
    xs = np.repeat(x, S.shape[1]) if S.size else np.zeros(0)
    ys = safe_log10(S.ravel())
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=np.where(np.isfinite(ys), ys, np.nan),
            mode="markers",
            marker=dict(size=6, color="#1f77b4", opacity=0.7),
            customdata=raw_labels(ys),
            hovertemplate="J<sub>%{x}</sub><br>σ = %{customdata}<extra></extra>",
            name="σ of J<sub>i</sub>",
        )
    )
    fig.add_hline(y=0, line=dict(color="#d62728", dash="dash"), annotation_text="σ = 1")
    state = "the full (h, c) state" if u.kind == "lstm" else "the state"
    fig.update_layout(
        title=f"Singular values of each factor J<sub>i</sub> (of {state})", xaxis_title="step i", showlegend=False
    )
    decade_axis(fig, np.append(ys, 0.0), "y", title="σ (log scale)")
    return style(fig)


def unroll_saturation_figure(u, threshold: float) -> go.Figure:
    """How many units are saturated or off (slope below ``threshold`` of its maximum) at each step,
    one line per slope (φ′ for a vanilla cell, each gate for a gated one)."""
    x = _unroll_x(u)[1:]
    fig = go.Figure()
    for k, n in u.saturated_counts.items():
        fig.add_trace(
            go.Scatter(
                x=x,
                y=n,
                mode="lines+markers",
                name=f"{k} ({u.functions[k]}′)",
                hovertemplate=f"{k}<br>step %{{x}}<br>%{{y}} units saturated<extra></extra>",
            )
        )
    H = next(iter(u.derivatives.values())).shape[1] if u.derivatives else 0
    fig.update_layout(
        title=f"Saturated or off units per step (slope < {threshold:g} × its maximum)",
        xaxis_title="step i",
        yaxis_title=f"units (of {H})",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    fig.update_yaxes(range=[-0.3, H + 0.3])
    return style(fig)


def unroll_slopes_heatmap(u, name: str) -> go.Figure:
    """One slope (φ′, or a gate's) of every unit at every factor step, as a fraction of its maximum."""
    if name not in u.derivatives:
        raise ValueError(f"name must be one of {', '.join(u.derivatives)}; got {name!r}")
    D = u.slope_fraction(name).T  # (H, n)
    fig = go.Figure(
        go.Heatmap(
            z=D,
            x=_unroll_x(u)[1:],
            y=np.arange(1, D.shape[0] + 1),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar=dict(title=dict(text="slope / max", side="top")),
            hovertemplate="unit %{y}<br>step %{x}<br>slope / max = %{z:.3g}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{name}: {u.functions[name]}′ of each unit (0 = saturated or off)",
        xaxis_title="step i",
        yaxis_title="unit",
    )
    return style(fig)


def nonnormality_figure(u) -> go.Figure:
    """||W^k||_2 against ρ^k for k up to t − s: a gap means non-normal transient growth that the
    spectral radius alone does not show."""
    k = np.arange(len(u.power_log10))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=k,
            y=u.power_log10,
            mode="lines+markers",
            name="‖W<sup>k</sup>‖<sub>2</sub>",
            customdata=raw_labels(u.power_log10),
            hovertemplate="k = %{x}<br>‖W<sup>k</sup>‖<sub>2</sub> = %{customdata}<extra></extra>",
        )
    )
    rk = u.rho_log10_powers
    fig.add_trace(
        go.Scatter(
            x=k,
            y=np.where(np.isfinite(rk), rk, np.nan),
            mode="lines",
            line=dict(dash="dash", color="#d62728"),
            name=f"ρ<sup>k</sup>, ρ = {u.rho:.3g}",
            customdata=raw_labels(rk),
            hovertemplate="k = %{x}<br>ρ<sup>k</sup> = %{customdata}<extra></extra>",
        )
    )
    gap = float(np.nanmax(np.where(np.isfinite(u.transient_gap), u.transient_gap, np.nan))) if len(k) > 1 else 0.0
    fig.update_layout(
        title=f"Non-normality of {u.matrix}: largest ‖W<sup>k</sup>‖/ρ<sup>k</sup> = {raw_label(gap)}, "
        f"departure from normality {u.departure:.3g}",
        xaxis_title="power k",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    decade_axis(fig, np.concatenate([u.power_log10, rk]), "y", title="norm (log scale)")
    return style(fig)


def unroll_contribution_figure(u) -> go.Figure:
    """‖term i‖_F of ∂ℓ_t/∂W_hh for every source step i ≤ t (log scale), the clicked s marked: how much of
    the loss's gradient at t arrives through h_s, against the other steps."""
    n = np.asarray(u.contribution_norms, dtype=float)
    ys = safe_log10(n)
    steps = np.arange(1, len(n) + 1)
    colors = np.where(steps == u.s + 1, "#d62728", "#1f77b4")
    fig = go.Figure(
        go.Bar(
            x=steps,
            y=np.where(np.isfinite(ys), ys, np.nan),
            marker_color=colors,
            customdata=raw_labels(ys),
            hovertemplate="through h(%{x})<br>‖term‖<sub>F</sub> = %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Terms of ∂ℓ({u.t + 1})/∂W_hh by source step (red: s = {u.s + 1})",
        xaxis_title="source step i",
        showlegend=False,
    )
    decade_axis(fig, ys, "y", title="‖term‖_F (log scale)")
    return style(fig)
