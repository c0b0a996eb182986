"""The training player's figures: one Plotly animation frame per kept weight snapshot, so playing
needs no server round trip."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .heatmaps import gradient_flow_heatmap, shown_steps
from .labels import decade_axis, fmt_power, log_hover_text, raw_label, safe_log10
from .profiles import loss_gradient_figure
from .spectra import lyapunov_figure, singular_values_figure
from .style import style

FRAME_MS = 600  # how long the play button shows each frame


PLAYER_MAX_CELLS = 100  # the player's heatmaps keep at most this many steps per side (every frame is sent at once)


def _frame_title(base: str, f) -> str:
    loss = f"{f.loss:.4g}" if math.isfinite(f.loss) else f"{f.loss} (diverged)"
    why = {"clip": ", clipped", "diverged": ", diverged"}
    extra = "".join(why[r] for r in f.reasons if r in why)
    return f"{base}<br><sup>training step {f.step}, loss {loss}{extra}</sup>"


def animate(fig: go.Figure, frames: list[go.Frame], steps: list[int]) -> go.Figure:
    """Add a play/pause button and a step slider that move through ``frames`` in the browser.

    Every frame is part of the figure, so neither playing nor dragging the slider asks the server for
    anything. The slider's labels are the training steps; frame names must be unique.
    """
    if len(frames) != len(steps):
        raise ValueError(f"frames and steps must have the same length, got {len(frames)} and {len(steps)}")
    fig.frames = frames
    still = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    play = dict(frame=dict(duration=FRAME_MS, redraw=True), fromcurrent=True, transition=dict(duration=0))
    fig.update_layout(
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                showactive=False,
                x=0.0,
                xanchor="left",
                y=-0.22,
                yanchor="top",
                pad=dict(t=0, r=10),
                buttons=[
                    dict(label="▶ Play", method="animate", args=[None, play]),
                    dict(
                        label="‖ Pause",
                        method="animate",
                        args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))],
                    ),
                ],
            )
        ],
        sliders=[
            dict(
                active=0,
                x=0.22,  # right of the Play and Pause buttons
                len=0.78,
                y=-0.22,
                yanchor="top",
                pad=dict(t=0),
                # at the slider's right end: at its left the label ran into the Pause button
                currentvalue=dict(prefix="training step ", visible=True, xanchor="right"),
                steps=[
                    dict(label=str(st), method="animate", args=[[fr.name], still])
                    for fr, st in zip(frames, steps, strict=True)
                ],
            )
        ],
        margin=dict(b=150),
    )
    return fig


def show_frame(fig: go.Figure, index: int) -> go.Figure:
    """Open an animated figure (:func:`animate`) at frame ``index`` (0-based) instead of the first: that
    frame's data in the traces it animates, its title, and the slider's active step (what a copied link's
    chosen frame and the HTML report show). Play then runs from the start in the browser, as before."""
    from bptt_core.config import check_int

    if not fig.frames or not fig.layout.sliders:
        raise ValueError("fig must be an animated figure (bptt_core.figures.animate): it has no frames")
    index = check_int("index (frame)", index, 0, len(fig.frames) - 1)
    fr = fig.frames[index]
    for i, trace in zip(fr.traces, fr.data, strict=True):
        fig.data[i].update({k: v for k, v in trace.to_plotly_json().items() if k != "type"})
    if fr.layout.title.text is not None:
        fig.update_layout(title_text=fr.layout.title.text)
    fig.layout.sliders[0].active = index
    return fig


def _check_frames(frames) -> list:
    frames = list(frames)
    if not frames:
        raise ValueError("frames must hold at least one snapshot (the run kept none: snapshots=0?)")
    return frames


def _shown_log(Z: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where(np.isneginf(Z), lo, np.where(np.isposinf(Z), hi, Z))


def player_heatmap_figure(frames, norm="fro", block: str = "h", max_cells: int = PLAYER_MAX_CELLS) -> go.Figure:
    """The gradient-flow heatmap of every snapshot, one animation frame each, on one colour scale."""
    frames = _check_frames(frames)
    idx = shown_steps(frames[0].L.shape[0], max_cells)  # the steps every frame shows (and the last)
    Ls = [np.asarray(f.L, dtype=float)[np.ix_(idx, idx)] for f in frames]
    lo, hi = _finite_range(Ls)
    fig = gradient_flow_heatmap(frames[0].L, norm, block, zrange=(lo, hi), max_cells=max_cells, centre="one")
    base = fig.layout.title.text.replace("Gradient flow", "Gradient flow over training")
    out = [
        go.Frame(
            name=f.label,
            data=[go.Heatmap(z=_shown_log(Z, lo, hi), customdata=log_hover_text(Z))],
            traces=[0],
            layout=dict(title_text=_frame_title(base, f)),
        )
        for f, Z in zip(frames, Ls, strict=True)
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    # taller than a still heatmap: the Play button and the slider take 150 px below it
    return animate(fig, out, [f.step for f in frames]).update_layout(height=580)


def _finite_range(arrays, pad: float = 0.0) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a, dtype=float)[np.isfinite(a)].ravel() for a in arrays])
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 0.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return lo - pad, hi + pad


def player_dh_figure(frames) -> go.Figure:
    """||dL/dh_t|| along the probe sequence for every snapshot (log scale, one y range for all frames)."""
    frames = _check_frames(frames)
    logs = [safe_log10(f.dh_norms) for f in frames]
    fig = loss_gradient_figure(frames[0].dh_norms, "last")
    lo, hi = _finite_range(logs, 0.3)
    decade_axis(fig, [lo, hi], "y", title="‖∂L/∂h(t)‖ (log scale)", range=[lo, hi])
    base = "‖∂L/∂h(t)‖ over training"
    out = [
        go.Frame(
            name=f.label,
            data=[
                go.Scatter(
                    y=np.where(np.isneginf(g), np.nan, g),
                    customdata=[fmt_power(float(v)) for v in np.asarray(f.dh_norms, dtype=float)],
                )
            ],
            traces=[0],
            layout=dict(title_text=_frame_title(base, f)),
        )
        for f, g in zip(frames, logs, strict=True)
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    return animate(fig, out, [f.step for f in frames])


def player_eigenvalue_figure(frames, paths: np.ndarray | None = None, matrix: str | None = None) -> go.Figure:
    """Eigenvalues of the recurrent matrix at every snapshot, each with its path so far traced in the
    complex plane. ``paths``: (n_frames, H) matched eigenvalues (:func:`bptt_core.learning.player.eigen_paths`);
    by default each frame's own order (the dots are right, the paths may jump)."""
    frames = _check_frames(frames)
    matrix = matrix or getattr(frames[0], "matrix", "W_hh")
    P = np.asarray(paths if paths is not None else [f.eigenvalues for f in frames], dtype=complex)  # (F, H)
    if P.shape[0] != len(frames):
        raise ValueError(f"paths must have one row per frame ({len(frames)}), got {P.shape[0]}")
    fin = P[np.isfinite(P)]
    r = max(1.1, 1.1 * float(np.abs(fin).max()) if fin.size else 1.1)
    th = np.linspace(0, 2 * np.pi, 361)

    def path_xy(i: int) -> tuple[list, list]:
        xs, ys = [], []
        for j in range(P.shape[1]):
            xs += [*P[: i + 1, j].real.tolist(), None]
            ys += [*P[: i + 1, j].imag.tolist(), None]
        return xs, ys

    def dots(i: int) -> go.Scatter:
        ev = P[i]
        return go.Scatter(x=ev.real, y=ev.imag, customdata=np.abs(ev))

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.cos(th),
            y=np.sin(th),
            mode="lines",
            line=dict(color="#333", width=1.5),
            name="unit circle |λ| = 1",
            hoverinfo="skip",
        )
    )
    px, py = path_xy(0)
    fig.add_trace(
        go.Scatter(
            x=px,
            y=py,
            mode="lines",
            line=dict(color="rgba(31,119,180,0.45)", width=1.5),
            name="path since the first snapshot",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=P[0].real,
            y=P[0].imag,
            mode="markers",
            marker=dict(size=8, color="#d62728", line=dict(width=0.5, color="white")),
            name="eigenvalues λ at this step",
            customdata=np.abs(P[0]),
            hovertemplate="λ = %{x:.4g} %{y:+.4g}i<br>|λ| = %{customdata:.4g}<extra></extra>",
        )
    )
    base = f"Eigenvalues of {matrix} over training"
    out = []
    for i, f in enumerate(frames):
        px, py = path_xy(i)
        title = _frame_title(f"{base} (ρ = {f.rho:.3g})", f)
        out.append(
            go.Frame(name=f.label, data=[go.Scatter(x=px, y=py), dots(i)], traces=[1, 2], layout=dict(title_text=title))
        )
    fig.update_layout(
        title_text=out[0].layout.title.text,
        xaxis_title="Re λ",
        yaxis_title="Im λ",
        legend=dict(orientation="h", yanchor="top", y=-0.5, x=0),  # below the Play button and the slider
    )
    fig.update_xaxes(range=[-r, r], zeroline=True)
    fig.update_yaxes(range=[-r, r], scaleanchor="x", scaleratio=1, zeroline=True)
    fig = animate(style(fig), out, [f.step for f in frames])
    return fig.update_layout(height=600, margin=dict(b=220))


def player_singular_values_figure(frames, matrix: str | None = None) -> go.Figure:
    """Singular values of the recurrent matrix at every snapshot, with the 1/γ line; one y range."""
    frames = _check_frames(frames)
    matrix = matrix or getattr(frames[0], "matrix", "W_hh")
    fig = singular_values_figure(frames[0].singular_values, frames[0].gamma, matrix)
    top = max(
        [1.0 / frames[0].gamma]
        + [float(np.nanmax(f.singular_values)) for f in frames if np.isfinite(f.singular_values).any()]
    )
    fig.update_yaxes(range=[0, 1.25 * top])
    base = f"Singular values of {matrix} over training"
    out = [
        go.Frame(
            name=f.label,
            data=[go.Scatter(y=np.asarray(f.singular_values, dtype=float))],
            traces=[0],
            layout=dict(title_text=_frame_title(f"{base} (σ<sub>1</sub> = {f.sigma1:.3g})", f)),
        )
        for f in frames
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    return animate(fig, out, [f.step for f in frames])


def player_lyapunov_figure(frames) -> go.Figure:
    """The top Lyapunov exponents (log10 per step) at every snapshot; one y range for all frames."""
    frames = _check_frames(frames)
    fig = lyapunov_figure(frames[0].lyapunov)
    lo, hi = _finite_range([f.lyapunov for f in frames], 0.1)
    fig.update_yaxes(range=[min(lo, 0.0), max(hi, 0.0)])
    base = "Top Lyapunov exponents over training"

    def bars(lam):
        lam = np.asarray(lam, dtype=float)
        shown = np.where(np.isfinite(lam), lam, np.nan)
        return go.Bar(
            y=shown,
            marker_color=np.where(shown > 0, "#d62728", "#1f77b4"),
            customdata=[f"{v:.4g} (×{raw_label(v)} per step)" if np.isfinite(v) else "−∞ (collapsed)" for v in lam],
        )

    out = [
        go.Frame(name=f.label, data=[bars(f.lyapunov)], traces=[0], layout=dict(title_text=_frame_title(base, f)))
        for f in frames
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    return animate(fig, out, [f.step for f in frames])
