"""Compare mode: A and B side by side on one colour range, their log10 ratio, both spectra in one
plane and both histories on one axis."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .heatmaps import gradient_flow_heatmap
from .labels import decade_axis, decade_ticks, fmt_power, log_hover_text, raw_label, safe_log10
from .ranges import axis_range, shared_range, symmetric_range
from .style import HEAT_COLORSCALE, style

COMPARE_COLORS = {"A": "#1f77b4", "B": "#d62728"}


def compare_heatmaps(L_a, L_b, norm="fro", block: str = "h", labels=("A", "B")) -> tuple[go.Figure, go.Figure]:
    """A's and B's gradient-flow heatmaps on one colour range (equal zmin/zmax covering both)."""

    zr = shared_range(L_a, L_b)
    figs = []
    for L, lab in zip((L_a, L_b), labels, strict=True):
        fig = gradient_flow_heatmap(np.asarray(L, dtype=float), norm, block, zrange=zr)
        fig.update_layout(title_text=f"{lab}: {fig.layout.title.text}")
        figs.append(fig)
    return figs[0], figs[1]


def log_ratio_figure(D, labels=("A", "B")) -> go.Figure:
    """log10 of B's norm over A's at every (t, s): red where B carries more gradient, blue less."""

    D = np.asarray(D, dtype=float)
    lo, hi = symmetric_range(D)
    steps = np.arange(1, D.shape[0] + 1)
    tv, tt = decade_ticks(lo, hi)
    a, b = labels
    fig = go.Figure(
        go.Heatmap(
            z=np.clip(D, lo, hi),
            x=steps,
            y=steps,
            zmin=lo,
            zmax=hi,
            colorscale=HEAT_COLORSCALE,
            zmid=0,
            customdata=log_hover_text(D),
            hovertemplate=f"t = %{{y}}<br>s = %{{x}}<br>{b} / {a} = %{{customdata}}<extra></extra>",
            colorbar=dict(title=dict(text=f"{b} / {a}", side="top"), tickvals=tv, ticktext=tt),
        )
    )
    fig.update_layout(
        title=f"Gradient flow, {b} against {a}: ratio of ‖∂h(t)/∂h(s)‖ (log scale)",
        xaxis_title="source step s",
        yaxis_title="target step t",
    )
    fig.update_yaxes(autorange="reversed")
    return style(fig)


def compare_eigenvalue_figure(ev_a, ev_b, labels=("A", "B"), matrix: str = "W_hh") -> go.Figure:
    """A's and B's eigenvalues in one complex plane, with the unit circle."""
    th = np.linspace(0, 2 * np.pi, 361)
    fig = go.Figure(
        go.Scatter(
            x=np.cos(th),
            y=np.sin(th),
            mode="lines",
            line=dict(color="#333", width=1.5),
            name="unit circle |λ| = 1",
            hoverinfo="skip",
        )
    )
    r = 1.1
    for ev, lab, sym, col in zip((ev_a, ev_b), labels, ("circle", "x"), COMPARE_COLORS.values(), strict=True):
        ev = np.asarray(ev, dtype=complex)
        rho = float(np.abs(ev).max()) if ev.size else 0.0
        r = max(r, 1.1 * rho)
        fig.add_trace(
            go.Scatter(
                x=ev.real,
                y=ev.imag,
                mode="markers",
                marker=dict(size=8, symbol=sym, color=col),
                name=f"{lab}: λ (ρ = {rho:.3g})",
                customdata=np.abs(ev),
                hovertemplate=f"{lab}<br>λ = %{{x:.4g}} %{{y:+.4g}}i<br>|λ| = %{{customdata:.4g}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Eigenvalues of {matrix}: {labels[0]} and {labels[1]} in one plane",
        xaxis_title="Re λ",
        yaxis_title="Im λ",
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
    )
    fig.update_xaxes(range=[-r, r], zeroline=True)
    fig.update_yaxes(range=[-r, r], scaleanchor="x", scaleratio=1, zeroline=True)
    return style(fig)


def compare_history_figure(hist_a, hist_b, column: str = "grad_norm", labels=("A", "B")) -> go.Figure:
    """A's and B's training histories of ``column`` (log scale) on one axis."""
    fig = go.Figure()
    allv = []
    for h, lab in zip((hist_a, hist_b), labels, strict=True):
        v = safe_log10(h[column].to_numpy(float))
        allv.extend(v[np.isfinite(v)].tolist())
        fig.add_trace(
            go.Scatter(
                x=h["step"],
                y=np.where(np.isfinite(v), v, np.nan),
                mode="lines",
                name=lab,
                line=dict(color=COMPARE_COLORS.get(lab), width=2),
                customdata=[fmt_power(float(x)) for x in h[column]],
                hovertemplate=f"{lab}<br>step %{{x}}<br>{column} = %{{customdata}}<extra></extra>",
            )
        )
    what = {"grad_norm": "global gradient norm (before clipping)", "loss": "training loss"}.get(column, column)
    fig.update_layout(
        title=f"{what.capitalize()}: {labels[0]} and {labels[1]}",
        xaxis_title="training step",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    decade_axis(fig, allv or [0.0], "y", title=f"{what} (log scale)")
    return style(fig)


def compare_singular_values_figure(sv_a, sv_b, gammas=(1.0, 1.0), labels=("A", "B"), matrix: str = "W_hh") -> go.Figure:
    """A's and B's singular values (largest first) on one axis, with Pascanu et al.'s 1/γ line of each
    (one line when both γ agree); the y range covers both series and both lines."""

    fig = go.Figure()
    all_v = []
    for sv, lab, sym in zip((sv_a, sv_b), labels, ("circle", "x"), strict=True):
        sv = np.asarray(sv, dtype=float)
        all_v.append(sv)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(sv) + 1), y=sv, mode="lines+markers", name=f"{lab}: σ<sub>i</sub>",
                marker=dict(size=7, symbol=sym), line=dict(color=COMPARE_COLORS.get(lab)),
                hovertemplate=f"{lab}<br>i = %{{x}}<br>σ<sub>i</sub> = %{{y:.5g}}<extra></extra>",
            )
        )  # fmt: skip
    bounds = sorted({1.0 / float(g) for g in gammas})
    for b in bounds:
        who = " and ".join(lab for lab, g in zip(labels, gammas, strict=True) if 1.0 / float(g) == b)
        fig.add_hline(y=b, line=dict(color="#555", dash="dash", width=2), annotation_text=f"1/γ = {b:.3g} ({who})",
                      annotation_position="top right",
                      annotation=dict(bgcolor="rgba(255,255,255,0.85)", xanchor="right", yanchor="bottom", yshift=14))  # fmt: skip
    _, hi = axis_range(0.0, *all_v, *bounds, pad=0.0)
    fig.update_layout(
        title=f"Singular values of {matrix}: {labels[0]} and {labels[1]} on one axis",
        xaxis_title="index i (descending)",
        yaxis_title="singular value σ<sub>i</sub> (unitless)",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    fig.update_yaxes(range=[0, 1.25 * hi])  # headroom for the 1/γ labels
    return style(fig)


def compare_lyapunov_figure(lam_a, lam_b, labels=("A", "B")) -> go.Figure:
    """A's and B's Lyapunov spectra (log10 per step) on one axis, grouped bars, zero marked; a collapsed
    direction (−∞) is left out of the bars and said in the hover."""

    fig = go.Figure()
    shown_all = []
    for lam, lab in zip((lam_a, lam_b), labels, strict=True):
        lam = np.asarray(lam, dtype=float)
        shown = np.where(np.isfinite(lam), lam, np.nan)
        shown_all.append(shown)
        fig.add_trace(
            go.Bar(
                x=np.arange(1, len(lam) + 1), y=shown, name=f"{lab}: λ<sub>i</sub>",
                marker_color=COMPARE_COLORS.get(lab),
                customdata=[f"{v:.4g} (×{raw_label(v)} per step)" if np.isfinite(v) else "−∞ (collapsed)" for v in lam],
                hovertemplate=f"{lab}<br>i = %{{x}}<br>λ<sub>i</sub> = %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
    fig.add_hline(y=0, line=dict(color="#333", width=1))
    lo, hi = axis_range(0.0, *shown_all)
    fig.update_layout(
        title=f"Lyapunov spectra: {labels[0]} and {labels[1]} on one axis",
        barmode="group",
        xaxis_title="exponent index i",
        yaxis_title="λ<sub>i</sub> (log10 growth per step)",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    fig.update_yaxes(range=[lo, hi])
    return style(fig)
