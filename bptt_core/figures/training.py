"""Training histories: the clipping twins' gradient norms (before clipping, with the threshold and each
clip event) and losses, ||dL/dh_t|| over training steps, the BPTT / TBPTT / RTRL comparison, and a
monitored run's history."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .heatmaps import log_heatmap
from .labels import decade_axis, decade_ticks, fmt_power, safe_log10
from .style import style

TWIN_COLORS = {"unclipped": "#d62728", "norm": "#1f77b4", "value": "#2ca02c"}


TWIN_LABELS = {"unclipped": "no clipping", "norm": "clip by norm", "value": "clip by value"}


# Twins are identical until clipping first acts: thinner, dashed lines over thicker ones keep all three
# visible where they coincide.
TWIN_LINES = {
    "unclipped": dict(width=5, dash="solid"),
    "norm": dict(width=3, dash="dash"),
    "value": dict(width=2, dash="dot"),
}


CLIP_MARKERS = {"norm": "triangle-down", "value": "diamond"}  # white-filled, black-edged: never the curve's colour


def _twin_line(name: str) -> dict:
    return dict(color=TWIN_COLORS.get(name), **TWIN_LINES.get(name, dict(width=2, dash="solid")))


def grad_norm_history_figure(histories: dict, threshold: float, diverged: dict | None = None) -> go.Figure:
    """Global gradient norm (before clipping) per training step for each twin, log scale, with the
    clipping threshold line, clip events marked in a contrasting style, the first clip drawn as a
    line, and divergence shown as such."""
    fig = go.Figure()
    allv = [math.log10(threshold)]
    first_clips = {}
    for name, h in histories.items():
        g = safe_log10(h["grad_norm"].to_numpy())
        finite = np.isfinite(g)
        allv.extend(g[finite].tolist())
        fig.add_trace(
            go.Scatter(
                x=h["step"], y=np.where(finite, g, np.nan), mode="lines", line=_twin_line(name),
                name=TWIN_LABELS.get(name, name), customdata=[fmt_power(float(v)) for v in h["grad_norm"]],
                hovertemplate=f"{TWIN_LABELS.get(name, name)}<br>step %{{x}}<br>‖g‖ before clip = %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
        clipped = h[h["clipped"].astype(bool)]
        if len(clipped):
            first_clips[name] = int(clipped["step"].iloc[0])
            fig.add_trace(
                go.Scatter(
                    x=clipped["step"], y=safe_log10(clipped["grad_norm"].to_numpy()), mode="markers",
                    marker=dict(symbol=CLIP_MARKERS.get(name, "circle"), size=10, color="white",
                                line=dict(color="#111", width=1.5)),
                    name=f"{TWIN_LABELS.get(name, name)}: clip fired ({len(clipped)} steps)",
                    hovertemplate=f"{TWIN_LABELS.get(name, name)}: clipped at step %{{x}}<extra></extra>",
                )
            )  # fmt: skip
    last = max((int(h["step"].max()) for h in histories.values() if len(h)), default=1)
    if first_clips:
        step = min(first_clips.values())
        who = " and ".join(TWIN_LABELS.get(n, n) for n, s_ in first_clips.items() if s_ == step)
        fig.add_vline(x=step, line=dict(color="#111", dash="dashdot", width=1.5))
        fig.add_annotation(
            x=step, y=0.02, yref="paper", text=f"first clip: step {step} ({who}); identical before it",
            showarrow=False, xanchor="left" if step < last / 2 else "right", yanchor="bottom",
            bgcolor="rgba(255,255,255,0.85)",
        )  # fmt: skip
    for name, step in (diverged or {}).items():
        if step is None:
            continue
        fig.add_vline(x=step, line=dict(color=TWIN_COLORS.get(name, "#000"), dash="dot", width=2))
        fig.add_annotation(
            x=step, y=0.98, yref="paper", text=f"{TWIN_LABELS.get(name, name)}: diverged (NaN/inf) at step {step}",
            showarrow=False, xanchor="left" if step < last / 2 else "right",  # inside the plot, never cut at an edge
            font=dict(color=TWIN_COLORS.get(name, "#000")), bgcolor="rgba(255,255,255,0.85)",
        )  # fmt: skip
    fig.add_hline(
        y=math.log10(threshold),
        line=dict(color="#444", dash="dash", width=2),
        annotation_text=f"threshold c = {threshold:g}",
        annotation_position="top right",
        annotation_bgcolor="rgba(255,255,255,0.85)",
    )
    fig.update_xaxes(range=[0, last])  # annotations must not widen the axis
    fig.update_layout(
        title="Gradient norm during training, before clipping (twin runs)",
        xaxis_title="training step",
        legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0),
    )
    decade_axis(fig, allv, "y", title="global ‖∂L/∂θ‖<sub>2</sub> (log scale)")
    return style(fig)


def loss_history_figure(histories: dict, diverged: dict | None = None) -> go.Figure:
    """Training loss of each twin (log scale)."""
    fig = go.Figure()
    allv = []
    for name, h in histories.items():
        lv = safe_log10(h["loss"].to_numpy())
        finite = np.isfinite(lv)
        allv.extend(lv[finite].tolist())
        fig.add_trace(
            go.Scatter(
                x=h["step"], y=np.where(finite, lv, np.nan), mode="lines", line=_twin_line(name),
                name=TWIN_LABELS.get(name, name), customdata=[fmt_power(float(v)) for v in h["loss"]],
                hovertemplate=f"{TWIN_LABELS.get(name, name)}<br>step %{{x}}<br>loss = %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
    for name, step in (diverged or {}).items():
        if step is not None:
            fig.add_vline(x=step, line=dict(color=TWIN_COLORS.get(name, "#000"), dash="dot", width=2))
    fig.update_layout(
        title="Training loss (twin runs)",
        xaxis_title="training step",
        legend=dict(orientation="h", yanchor="bottom", y=-0.4, x=0),
    )
    decade_axis(fig, allv or [0.0], "y", title="loss L (log scale)")
    return style(fig)


def dh_heatmap_figure(dh_norms: np.ndarray, name: str = "") -> go.Figure:
    """Training step x time heatmap of log10 ||dL/dh_t||."""
    Z = safe_log10(dh_norms)  # (steps, T)
    fig = log_heatmap(
        Z,
        x=np.arange(1, Z.shape[1] + 1),
        y=np.arange(Z.shape[0]),
        title=f"‖∂L/∂h(t)‖ during training{': ' + name if name else ''}",
        x_title="time step t",
        y_title="training step",
        colorbar_title="‖∂L/∂h(t)‖",
        hover_x="t",
        hover_y="step",
        hover_value="‖∂L/∂h(t)‖",
    )
    return fig


def comparison_figure(df) -> go.Figure:
    """Full BPTT, TBPTT variants and RTRL side by side: memory, time per update, gradient accuracy."""
    from plotly.subplots import make_subplots

    d = df[df["memory_bytes"].notna()] if "memory_bytes" in df else df
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("memory held (KiB)", "time per update (ms)", "cosine to full BPTT"),
        horizontal_spacing=0.09,
    )
    names = d["variant"].astype(str).tolist()
    colors = ["#d62728" if n == "full BPTT" else "#9467bd" if n == "RTRL" else "#1f77b4" for n in names]
    mem = d["memory_bytes"].astype(float).to_numpy() / 1024
    tm = d["time_per_update_s"].astype(float).to_numpy() * 1e3
    cos = d["cosine"].astype(float).to_numpy()
    fig.add_trace(
        go.Bar(x=names, y=mem, marker_color=colors, hovertemplate="%{x}<br>%{y:.4g} KiB<extra></extra>"), 1, 1
    )
    spread = [
        f"{lo * 1e3:.2g}–{hi * 1e3:.2g}"
        for lo, hi in zip(
            d.get("time_per_update_min_s", d["time_per_update_s"]).astype(float),
            d.get("time_per_update_max_s", d["time_per_update_s"]).astype(float),
            strict=True,
        )
    ]
    fig.add_trace(
        go.Bar(x=names, y=tm, marker_color=colors, customdata=spread,
               hovertemplate="%{x}<br>≈ %{y:.2g} ms per update (median; runs %{customdata} ms)<extra></extra>"), 1, 2
    )  # fmt: skip
    fig.add_trace(
        go.Bar(x=names, y=cos, marker_color=colors, hovertemplate="%{x}<br>cosine %{y:.6f}<extra></extra>"), 1, 3
    )
    # RTRL holds orders of magnitude more than the BPTT variants: linear bars would flatten them to nothing.
    for col, v, unit in ((1, mem, "KiB"), (2, tm, "ms")):
        pos = v[np.isfinite(v) & (v > 0)]
        lo, hi = (math.floor(math.log10(pos.min())), math.ceil(math.log10(pos.max()))) if pos.size else (-1, 1)
        hi = max(hi, lo + 1)
        tv, tt = decade_ticks(lo, hi)
        fig.update_yaxes(
            title_text=f"{unit} (log scale)", type="log", tickvals=[10.0**e for e in tv], ticktext=tt,
            range=[lo, math.log10(pos.max()) + 0.15 if pos.size else hi],  # no empty decade above the tallest bar
            row=1, col=col,
        )  # fmt: skip
    lo = float(np.nanmin(cos)) if np.isfinite(cos).any() else 0.0
    fig.update_yaxes(title_text="cosine (1 = exact)", range=[min(0.0, lo - 0.05), 1.05], row=1, col=3)
    fig.update_xaxes(title_text="method", tickangle=-30)
    fig.update_layout(title="Measured: full BPTT vs TBPTT vs RTRL on this model", showlegend=False)
    return style(fig)


def run_flow_history_figure(history: dict) -> go.Figure:
    """Decay rate and top Lyapunov exponent (log10 per step, left axis), rho and sigma_1 of the top
    layer's recurrent matrix (right axis), at the logged steps of a monitored run."""
    step = np.asarray(history["step"])
    fig = go.Figure()
    for key, name, color in (("decay_rate", "decay rate", "#2ca02c"), ("lyapunov_top", "top Lyapunov λ₁", "#9467bd")):
        fig.add_trace(
            go.Scatter(x=step, y=np.asarray(history[key], dtype=float), mode="lines+markers", name=name,
                       line=dict(color=color), hovertemplate=f"step %{{x}}<br>{name} = %{{y:.4g}} log10/step<extra></extra>")
        )  # fmt: skip
    for key, name, color in (("rho", "ρ", "#1f77b4"), ("sigma1", "σ₁", "#d62728")):
        fig.add_trace(
            go.Scatter(x=step, y=np.asarray(history[key], dtype=float), mode="lines+markers", name=name, yaxis="y2",
                       line=dict(color=color, dash="dot"), hovertemplate=f"step %{{x}}<br>{name} = %{{y:.4g}}<extra></extra>")
        )  # fmt: skip
    fig.add_hline(y=0, line=dict(color="#999", width=1))
    fig.update_layout(
        title="Gradient flow and spectrum at the logged steps",
        xaxis_title="training step",
        yaxis=dict(title="log10 change per step"),
        yaxis2=dict(title="ρ, σ₁ (top layer)", overlaying="y", side="right", showgrid=False),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return style(fig)
