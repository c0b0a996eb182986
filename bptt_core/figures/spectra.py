"""Spectra: the eigenvalues of W_hh with the unit circle (and the circular-law radius), its singular
values with the 1/gamma line (Pascanu et al. 2013), the Lyapunov spectrum, and the LRU's sensitivity
to lambda (Zucchet & Orvieto 2024)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .labels import decade_axis, raw_label, raw_labels
from .style import style


def eigenvalue_figure(
    eigenvalues: np.ndarray, rho: float, matrix: str = "W_hh", circle_law: float | None = None
) -> go.Figure:
    """Eigenvalues in the complex plane with the unit circle (and the circle of radius rho); ``circle_law``:
    the radius g of the disk a Gaussian init's eigenvalues fill as H grows (drawn when given)."""
    ev = np.asarray(eigenvalues)
    th = np.linspace(0, 2 * np.pi, 361)
    fig = go.Figure()
    if circle_law is not None:
        fig.add_trace(
            go.Scatter(
                x=circle_law * np.cos(th), y=circle_law * np.sin(th), mode="lines",
                line=dict(color="#2ca02c", dash="dash", width=2), name=f"circular law: radius g = {circle_law:.3g}",
                hoverinfo="skip",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=np.cos(th), y=np.sin(th), mode="lines", line=dict(color="#333", width=1.5), name="unit circle |λ| = 1",
            hoverinfo="skip",
        )
    )  # fmt: skip
    if rho > 0 and abs(rho - 1) > 1e-6:
        fig.add_trace(
            go.Scatter(
                x=rho * np.cos(th), y=rho * np.sin(th), mode="lines", line=dict(color="#d62728", dash="dot"),
                name=f"spectral radius ρ = {rho:.3g}", hoverinfo="skip",
            )
        )  # fmt: skip
    # All |λ| equal (an orthogonal W_hh): widen the colour range so the bar does not read 1.00, 1.00, 1.00.
    mags = np.abs(ev)
    flat = mags.size == 0 or float(np.ptp(mags)) < 1e-6 * max(1.0, float(mags.max()))
    span = dict(cmin=float(mags.mean()) - 0.05, cmax=float(mags.mean()) + 0.05) if flat and mags.size else {}
    fig.add_trace(
        go.Scatter(
            x=ev.real,
            y=ev.imag,
            mode="markers",
            marker=dict(size=7, color=np.abs(ev), colorscale="Viridis", line=dict(width=0.5, color="white"), **span,
                        colorbar=dict(title=dict(text="|λ|", side="top"), tickformat=".3g")),
            name="eigenvalues λ",
            customdata=np.abs(ev),
            hovertemplate="λ = %{x:.4g} %{y:+.4g}i<br>|λ| = %{customdata:.4g}<extra></extra>",
        )
    )  # fmt: skip
    r = max(1.1, 1.1 * float(np.abs(ev).max()) if ev.size else 1.1, 1.1 * (circle_law or 0))
    fig.update_layout(
        title=f"Eigenvalues of {matrix} in the complex plane",
        xaxis_title="Re λ",
        yaxis_title="Im λ",
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        margin=dict(b=120),
    )
    fig.update_xaxes(range=[-r, r], zeroline=True)
    fig.update_yaxes(range=[-r, r], scaleanchor="x", scaleratio=1, zeroline=True)
    return style(fig)


def singular_values_figure(singular_values: np.ndarray, gamma: float, matrix: str = "W_hh") -> go.Figure:
    """Singular values, largest first, with Pascanu et al.'s 1/gamma line."""
    sv = np.asarray(singular_values, dtype=float)
    i = np.arange(1, len(sv) + 1)
    bound = 1.0 / gamma
    fig = go.Figure(
        go.Scatter(
            x=i, y=sv, mode="lines+markers", marker=dict(size=6), name="σ<sub>i</sub>",
            hovertemplate="i = %{x}<br>σ<sub>i</sub> = %{y:.5g}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_hline(
        y=bound,
        line=dict(color="#d62728", dash="dash", width=2),
        annotation_text=f"1/γ = {bound:.3g}: σ<sub>1</sub> below ⇒ gradients vanish",
        annotation_position="top right",
        # Anchored at the right edge and lifted clear of the line so it never covers the dots.
        annotation=dict(bgcolor="rgba(255,255,255,0.85)", xanchor="right", yanchor="bottom", yshift=14),
    )
    fig.update_layout(
        title=f"Singular values of {matrix} (σ<sub>1</sub> = {sv[0]:.3g})"
        if sv.size
        else f"Singular values of {matrix}",
        xaxis_title="index i (descending)",
        yaxis_title="singular value σ<sub>i</sub> (unitless)",
        showlegend=False,
    )
    top = max(float(sv.max()) if sv.size else 1.0, bound)
    fig.update_yaxes(range=[0, 1.25 * top])  # headroom for the 1/γ label above the line
    return style(fig)


def lyapunov_figure(exponents_log10: np.ndarray, rate: float | None = None) -> go.Figure:
    """Lyapunov exponents (log10 per step), with zero (neutral) and the measured decay rate marked."""
    lam = np.asarray(exponents_log10, dtype=float)
    i = np.arange(1, len(lam) + 1)
    shown = np.where(np.isfinite(lam), lam, np.nan)
    fig = go.Figure(
        go.Bar(
            x=i,
            y=shown,
            marker_color=np.where(shown > 0, "#d62728", "#1f77b4"),
            customdata=[f"{v:.4g} (×{raw_label(v)} per step)" if np.isfinite(v) else "−∞ (collapsed)" for v in lam],
            hovertemplate="i = %{x}<br>λ<sub>i</sub> = %{customdata}<extra></extra>",
            name="Lyapunov exponents λ<sub>i</sub>",
        )
    )
    fig.add_hline(y=0, line=dict(color="#333", width=1))
    if rate is not None and np.isfinite(rate):
        # A line trace rather than an annotated hline: its label goes in the legend, off the bars.
        fig.add_trace(
            go.Scatter(
                x=[0.5, len(lam) + 0.5], y=[rate, rate], mode="lines", line=dict(color="#2ca02c", dash="dash", width=2),
                name=f"measured decay rate {rate:.3g} / step", hovertemplate=f"measured decay rate {rate:.3g}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        title="Lyapunov spectrum of the driven network (QR method)",
        xaxis_title="exponent index i",
        yaxis_title="λ<sub>i</sub> (log10 growth per step)",
        showlegend=rate is not None and bool(np.isfinite(rate)),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return style(fig)


def lambda_sensitivity_figure(result) -> go.Figure:
    """Zucchet & Orvieto (2024): E|dh_T/d|λ||² against |λ| (measured, with its exact expectation), beside
    ||dh_T/dh_1|| and E|h_T|², both of which stay at or below about 1. ``result``: a
    :class:`bptt_core.flow.sensitivity.LambdaSensitivity`."""
    r = np.asarray(result.radii, dtype=float)
    gap = 1 - r  # log axis of 1 - |λ|: the approach to the unit circle spreads out
    traces = [
        ("E|∂h_T/∂|λ||², measured", np.log10(result.measured), "#d62728", "solid", "circle"),
        ("its expectation (exact sum)", np.log10(result.theory), "#d62728", "dot", None),
        ("‖∂h_T/∂h_1‖ = |λ|^(T−1)", np.asarray(result.jacobian_log10, dtype=float), "#1f77b4", "solid", "square"),
        ("E|h_T|² (normalised forward)", np.log10(result.state_ms), "#2ca02c", "dash", "diamond"),
    ]
    fig = go.Figure()
    for name, y, color, dash, symbol in traces:
        fig.add_trace(
            go.Scatter(
                x=gap, y=y, name=name, mode="lines+markers" if symbol else "lines",
                line=dict(color=color, dash=dash, width=2), marker=dict(symbol=symbol or "circle", size=8),
                customdata=[[f"{ri:.4g}", label] for ri, label in zip(r, raw_labels(y), strict=True)],
                hovertemplate=f"|λ| = %{{customdata[0]}}<br>{name} = %{{customdata[1]}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(type="log", autorange="reversed", title="1 − |λ| (log scale; |λ| → 1 to the right)")
    decade_axis(fig, np.concatenate([t[1][np.isfinite(t[1])] for t in traces]), "y", "value (log scale)")
    fig.update_layout(
        title=f"Sensitivity to λ grows as |λ| → 1, the Jacobian does not (LRU, T = {result.seq_len})",
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),
    )
    return style(fig)
