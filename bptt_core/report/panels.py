"""Each dashboard page's figures, assembled once from its numbers: the page shows them and the HTML
report prints them, so the two cannot drift (docs/design.md, "From a widget to a figure").

A :class:`Panel` is one figure with everything shown around it: the CSV of its numbers, the
"What am I looking at?" paragraph and a caption for the report. The builders take numbers (what the
dashboard caches and the report computes), never a Streamlit object, and never compute anything
heavier than a table: the expensive parts (Jacobian products, spectra, training) come in as
arguments. The headline numbers a page shows beside its figures (decay rate, TBPTT updates, dropped
pairs) are computed here too, so the page and the report state the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bptt_core.config import DIAGONAL_CELLS, ModelConfig, Norm
from bptt_core.figures.compare import (
    compare_eigenvalue_figure,
    compare_history_figure,
    compare_lyapunov_figure,
    compare_singular_values_figure,
    log_ratio_figure,
)
from bptt_core.figures.heatmaps import display_stride, gradient_flow_heatmap
from bptt_core.figures.labels import flow_symbol, norm_symbol, raw_label, threshold_label
from bptt_core.figures.player import (
    player_dh_figure,
    player_eigenvalue_figure,
    player_heatmap_figure,
    player_lyapunov_figure,
    player_singular_values_figure,
    show_frame,
)
from bptt_core.figures.profiles import (
    contributions_figure,
    lag_profile_figure,
    layer_reach_figure,
    loss_gradient_figure,
)
from bptt_core.figures.ranges import shared_range
from bptt_core.figures.spectra import (
    eigenvalue_figure,
    lambda_sensitivity_figure,
    lyapunov_figure,
    singular_values_figure,
)
from bptt_core.figures.style import style
from bptt_core.figures.training import (
    TWIN_LABELS,
    comparison_figure,
    dh_heatmap_figure,
    grad_norm_history_figure,
    loss_history_figure,
)
from bptt_core.figures.unroll import (
    nonnormality_figure,
    unroll_chain_figure,
    unroll_contribution_figure,
    unroll_saturation_figure,
    unroll_singular_values_figure,
)
from bptt_core.flow.summary import FlowSummary, flow_summary, lag_view
from bptt_core.flow.unroll import SATURATION_THRESHOLD
from bptt_core.learning.calculator import activation_bytes, checkpoint_activation_bytes, format_bytes
from bptt_core.learning.player import eigen_paths, frames_table
from bptt_core.learning.truncation import contribution_step, tbptt_kept_mask, tbptt_schedule

from . import compare as C


@dataclass
class Panel:
    """One figure and what goes with it."""

    key: str  # stable id: the chart's widget key on the page ("gf_heatmap")
    title: str  # the report's heading for it
    figure: go.Figure
    data: pd.DataFrame  # the numbers behind it (the CSV download)
    csv_name: str
    explain: str  # the "What am I looking at?" paragraph
    caption: str = ""  # one line under it in the report


def matrix_frame(L: np.ndarray, row: str = "t", col: str = "s") -> pd.DataFrame:
    """A (T, T) log10 matrix as a long table: 1-indexed row, col, log10 value and raw value."""
    T = L.shape[0]
    r, c = np.meshgrid(np.arange(1, T + 1), np.arange(1, L.shape[1] + 1), indexing="ij")
    ok = ~np.isnan(L)
    vals = L[ok]
    return pd.DataFrame(
        {row: r[ok], col: c[ok] - (1 if col == "k" else 0), "log10_norm": vals, "norm": [raw_label(v) for v in vals]}
    )


# -- gradient flow ---------------------------------------------------------------------------------


def profile_frame(s: FlowSummary) -> pd.DataFrame:
    k = np.arange(len(s.profile))
    d = {"lag_k": k, "mean_log10_norm": s.profile}
    if s.gamma_sigma1:
        d["bound_log10"] = s.profile[0] + k * math.log10(s.gamma_sigma1)
    return pd.DataFrame(d)


@dataclass
class FlowView:
    summary: FlowSummary
    stride: int  # the heatmap shows every stride-th step
    panels: list[Panel] = field(default_factory=list)


def gradient_flow_figures(
    cell: str,
    L: np.ndarray,
    spec,
    loss_grads: np.ndarray,
    terms: np.ndarray | None,
    *,
    norm="fro",
    lag: bool = False,
    block: str = "h",
    threshold: float = 1e-3,
    compare: dict[str, np.ndarray] | None = None,
    centre: str = "identity",
) -> FlowView:
    """The Gradient flow page: heatmap of L (or its lag view), the norm against lag, ||dL/dh_t|| and
    the per-step contributions (``terms``: norms for the loss at step contribution_step(T); None
    leaves that panel out). ``compare``: other cells' lag profiles to overlay (name -> profile)."""
    norm = Norm.of(norm)
    s = flow_summary(L, spec, cell, threshold)
    T = L.shape[0]
    stride = display_stride(T)
    M = lag_view(L) if lag else L
    what = flow_symbol(block)
    panels = [
        Panel(
            "gf_heatmap",
            "Gradient flow",
            gradient_flow_heatmap(M, norm, block, lag=lag, centre=centre),
            matrix_frame(M, "t", "k" if lag else "s"),
            "gradient-flow.csv",
            f"Each cell is the norm of the Jacobian {what}: how strongly a perturbation of the state at "
            "step s (column) changes the state at step t (row). The colour is log10 of it, so one colour step is a "
            "factor of 10. "
            + (
                "White is the norm at lag 0, the identity's (√H in Frobenius norm, 1 in spectral norm; the "
                "'Colour centre' control makes white a norm of 1 instead); "
                if centre == "identity"
                else "White is a norm of 1 (the diagonal is the identity: √H in Frobenius norm, 1 in spectral norm); "
            )
            + "blue is smaller (the gradient vanishes on its way back from t to s), red is larger (it explodes). "
            "Cells above the diagonal are empty: a state never depends on later ones. Hover for the exact value, "
            "even far below float32's range: the products are renormalised and the scale kept as a logarithm.",
            f"log10 {what} for every pair s ≤ t; white is the "
            + ("lag-0 norm" if centre == "identity" else "norm 1")
            + ", blue smaller (vanishing), red larger (exploding).",
        )
    ]
    compare = compare or {}
    prof_df = profile_frame(s)
    for name, p in compare.items():  # another length (compare mode's B): NaN past the shorter one
        col = np.full(len(prof_df), np.nan)
        n = min(len(p), len(col))
        col[:n] = np.asarray(p, dtype=float)[:n]
        prof_df[name] = col
    horizon = s.horizon if s.horizon is not None else "beyond the sequence"
    panels.append(
        Panel(
            "gf_lag",
            "Norm against lag",
            lag_profile_figure(
                s.profile,
                rate=s.rate,
                gamma_sigma1=s.gamma_sigma1,
                horizon=s.horizon,
                threshold=threshold,
                norm=norm,
                compare=compare,
                label=cell.upper(),
                block=block,
            ),  # fmt: skip
            prof_df,
            "norm-vs-lag.csv",
            "The mean over t of log10 ‖∂h(t)/∂h(t−k)‖ against the lag k: how the gradient's size changes as it "
            "travels k steps back. A straight line means geometric decay or growth; its slope is the decay rate "
            "(green dashes). The red dotted line is Pascanu et al.'s bound (γσ₁)ᵏ for a vanilla RNN (γ bounds |φ'|, "
            "σ₁ is W_hh's largest singular value): the measured curve can never rise above it. The vertical line is "
            f"the memory horizon: the first lag where the norm fell below {threshold_label(threshold)} of its lag-0 "
            "value, a "
            "natural truncation length for TBPTT.",
            f"Fitted decay {s.rate:.3g} log10 per step; memory horizon {horizon}.",
        )
    )
    panels.append(
        Panel(
            "gf_dldh",
            "‖∂L/∂h(t)‖",
            loss_gradient_figure(loss_grads, "last"),
            pd.DataFrame({"t": np.arange(1, len(loss_grads) + 1), "dL_dh_norm": loss_grads}),
            "dL-dh.csv",
            "‖∂L/∂h(t)‖ for a loss taken on the last step only (the squared error of the linear readout): the "
            "gradient BPTT delivers to each hidden state. Read from right to left: it starts at the last step "
            "and shrinks (or grows) as it is carried back through the Jacobians.",
            "The loss is taken on the last step.",
        )
    )
    if terms is not None:
        t = contribution_step(T)
        panels.append(
            Panel(
                "gf_contrib",
                "Per-step contributions",
                contributions_figure(terms, t),
                pd.DataFrame({"step_i": np.arange(1, len(terms) + 1), "term_fro_norm": terms}),
                "contributions.csv",
                f"∂ℓ_t/∂W_hh for the loss at step t = {t + 1} is a sum of one term per earlier step i: "
                "∂ℓ_t/∂h_t · ∂h_t/∂h_i · ∂⁺h_i/∂W_hh (∂⁺ is the immediate partial at step i). The bars are the "
                "terms' Frobenius norms; they sum (as matrices) exactly to autograd's gradient. When gradients "
                "vanish, only the last few steps contribute: the network cannot learn long-range dependencies.",
                f"The terms of ∂ℓ_t/∂W_hh for t = {t + 1}, one per earlier step.",
            )
        )
    return FlowView(s, stride, panels)


def depth_panel(reach: np.ndarray) -> Panel:
    """A stack's depth x time picture (``reach``: (num_layers, T) log10 norms at the last step)."""
    L, T = reach.shape
    return Panel(
        "gf_depth",
        "Depth × time",
        layer_reach_figure(reach),
        pd.DataFrame(reach.T, columns=[f"layer_{i}" for i in range(L)]).assign(s=np.arange(1, T + 1)),
        "depth-time.csv",
        f"The state at each step is every layer's state; the heatmap above reads the top layer's h. Here: how "
        f"much of a change at (layer i, step s) reaches the top layer's h at the last step, T = {T} "
        "(log10 ‖∂h^top(T)/∂h^i(s)‖, every other part of the state at s held fixed). A change at a lower "
        "layer reaches the top only through the layers above it at later steps, so at s = T it is exactly 0.",
        "How a change at (layer, step) reaches the top layer at the last step.",
    )


# -- spectrum --------------------------------------------------------------------------------------


def spectrum_frames(spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    ev = spec.eigenvalues
    eig = pd.DataFrame({"real": ev.real, "imag": ev.imag, "abs": np.abs(ev)})
    sv = pd.DataFrame({"i": np.arange(1, len(spec.singular_values) + 1), "singular_value": spec.singular_values})
    return eig, sv


def spectrum_figures(
    spec, lam: np.ndarray, rate: float | None, circle_law: float | None = None, cell: str = "rnn"
) -> list[Panel]:
    """The Spectrum page: eigenvalues with the unit circle, singular values with 1/γ, the Lyapunov
    spectrum (``lam`` in log10 per step) with the measured decay ``rate`` (None: not drawn)."""
    eig, sv = spectrum_frames(spec)
    return [
        Panel(
            "sp_eig",
            "Eigenvalues",
            eigenvalue_figure(spec.eigenvalues, spec.rho, spec.matrix, circle_law),
            eig,
            "eigenvalues.csv",
            f"The eigenvalues λ of {spec.matrix} in the complex plane, with the unit circle |λ| = 1. In a linear "
            "RNN, a component along an eigenvector is multiplied by λ at every step: inside the circle it decays, "
            "outside it grows. The spectral radius ρ = max |λ| (dotted circle) sets the long-run rate of "
            "$W_{hh}^k$; a Gaussian init with gain g fills the disk of radius g (the circular law), an orthogonal "
            "one puts every eigenvalue on the circle.",
            f"ρ = {spec.rho:.4g}.",
        ),
        Panel(
            "sp_sv",
            "Singular values",
            singular_values_figure(spec.singular_values, spec.gamma, spec.matrix),
            sv,
            "singular-values.csv",
            "The singular values σ_i of W_hh, largest first. σ₁ is the most a single step can stretch any vector; "
            "with the activation's slope bounded by γ, one step of backpropagation scales a gradient by at most "
            "γσ₁. The dashed line is 1/γ: if σ₁ lies below it, gradients must vanish geometrically (Pascanu et "
            "al. 2013); on it, the bound (γσ₁)ᵏ = 1 rules growth out; above it they may explode, but need not: "
            "the measured decay rate tells.",
            spec.verdict(plain=False, rate=rate, cell=cell),
        ),
        Panel(
            "sp_lyap",
            "Lyapunov spectrum",
            lyapunov_figure(lam, rate),
            pd.DataFrame({"i": np.arange(1, len(lam) + 1), "lyapunov_log10_per_step": lam}),
            "lyapunov.csv",
            "The Lyapunov exponents of the network driven by its input sequence (QR method, Benettin et al. "
            "1980): the average log10 growth per step of perturbations of the state along the actual trajectory, "
            "from most to least expanding. The top one is the rate at which ‖∂h(t)/∂h(s)‖ grows or decays at "
            "long lags; negative (blue) means vanishing. The green line is the decay rate fitted on the "
            "gradient-flow page.",
            "Top exponents, log10 growth per step.",
        ),
    ]


def sensitivity_panel(sens) -> Panel:
    """Zucchet & Orvieto (2024): the output's sensitivity to |λ| against |λ| (bptt_core.flow.sensitivity)."""
    growth = sens.measured[-1] / sens.measured[0]
    return Panel(
        "sp_lambda",
        "Sensitivity to λ",
        lambda_sensitivity_figure(sens),
        pd.DataFrame(
            {
                "abs_lambda": sens.radii,
                "dh_dlambda_ms_measured": sens.measured,
                "expectation": sens.theory,
                "log10_jacobian": sens.jacobian_log10,
                "h_ms": sens.state_ms,
            }
        ),  # fmt: skip
        "lambda-sensitivity.csv",
        f"Zucchet & Orvieto (2024): an LRU whose units all have |λ| = r, run on {sens.n_sequences} Gaussian "
        f"sequences of T = {sens.seq_len} steps. Red: the mean square of ∂h(T)/∂|λ|, measured by forward-mode "
        f"autograd (dots: its exact expectation); it grows {growth:.3g}× from |λ| = {sens.radii[0]:g} to "
        f"{sens.radii[-1]:g}, while ‖∂h(T)/∂h(1)‖ = |λ|^(T−1) (blue) never exceeds 1 and the normalised state "
        "(green) stays near 1: a loss can turn ill-conditioned in λ with nothing exploding in the Jacobians.",
        f"The sensitivity to λ grows {growth:.3g}× as |λ| → 1.",
    )


# -- truncated BPTT --------------------------------------------------------------------------------


@dataclass
class TruncationView:
    k1: int
    k2: int
    updates: int  # parameter updates per sequence
    dropped_fraction: float  # of the pairs s <= t
    largest_dropped: float | None  # log10 of the largest dropped norm; None if nothing is dropped
    panel: Panel


def truncation_figure(L: np.ndarray, k1: int, k2: int, norm="fro", block: str = "h") -> TruncationView:
    """The gradient-flow heatmap with the pairs (t, s) TBPTT(k1, k2) drops painted grey, and what the
    page says about it. k1, k2 above T = L.shape[0] are taken as T."""

    T = L.shape[0]
    k1, k2 = min(int(k1), T), min(int(k2), T)
    keep = tbptt_kept_mask(T, k1, k2)  # (T, T)
    defined = ~np.isnan(L)
    drop = ~keep & defined
    lost = L[drop]
    fig = gradient_flow_heatmap(L, Norm.of(norm), block, mask=drop)
    fig.update_layout(title=f"TBPTT({k1}, {k2}): the gradient paths truncation drops, in grey")
    panel = Panel(
        "tb_heatmap",
        "Truncation mask",
        fig,
        matrix_frame(L).assign(kept=keep[defined]),
        "tbptt-mask.csv",
        "The gradient-flow heatmap of log10 ‖∂h(t)/∂h(s)‖, with the pairs (t, s) whose contribution "
        f"∂ℓ_t/∂h_s TBPTT({k1}, {k2}) never computes painted grey. The loss at step t is injected at the first "
        "update τ ≥ t and flows back only through that update's window h(τ−k2+1) … h(τ), so what is kept is a "
        "staircase along the diagonal. If the coloured cells that turned grey are deep blue, truncation loses "
        "little; if they are white or red, it cuts off gradient that matters.",
        "Grey: pairs (t, s) whose gradient truncation drops.",
    )
    return TruncationView(
        k1,
        k2,
        len(tbptt_schedule(T, k1, k2)),
        float(drop.sum() / max(1, defined.sum())),
        float(np.nanmax(lost)) if lost.size else None,
        panel,
    )


def comparison_panel(df: pd.DataFrame) -> Panel:
    return Panel(
        "tb_compare",
        "Full BPTT vs TBPTT vs RTRL",
        comparison_figure(df),
        df,
        "bptt-vs-tbptt-vs-rtrl.csv",
        "Measured on this machine for the first sequence of the task: the bytes autograd holds for backward at "
        "the largest update (full BPTT and TBPTT, counted with saved-tensor hooks) or RTRL's sensitivity "
        "matrices; the median time per parameter update; and the cosine between each gradient and full BPTT's "
        "(1 = the same direction). RTRL is exact, with memory independent of the sequence length but cost "
        "growing like H⁴ per step.",
        "Measured on this machine.",
    )


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison as the page's static table: units in the headers, numbers as text, notes whole."""

    def whole(v) -> str:
        return "—" if pd.isna(v) else str(int(v))

    return pd.DataFrame(
        {
            "variant": df["variant"],
            "k1": df["k1"].map(whole),
            "k2": df["k2"].map(whole),
            "updates": df["updates"],
            "memory (KiB)": (df["memory_bytes"].astype(float) / 1024).map(lambda v: f"{v:.4g}"),
            "memory counted by": df["memory_how"],
            "time / update (ms)": [
                "—" if pd.isna(m) else f"≈ {m * 1e3:.2g} ({lo * 1e3:.2g}–{hi * 1e3:.2g})"
                for m, lo, hi in zip(
                    df["time_per_update_s"].astype(float),
                    df["time_per_update_min_s"].astype(float),
                    df["time_per_update_max_s"].astype(float),
                    strict=True,
                )
            ],  # fmt: skip
            "cosine to full BPTT": df["cosine"].map(lambda v: f"{v:.6f}"),
            "norm / full BPTT's": df["relative_norm"].map(lambda v: f"{v:.4g}"),
            "note": df["note"],
        }
    ).fillna("—")


# -- clipping --------------------------------------------------------------------------------------


def clipping_figures(histories: dict, diverged: dict, threshold: float, loss_on: str) -> list[Panel]:
    """The Clipping page's two history figures (``histories``: twin -> its history DataFrame)."""
    both = pd.concat([h.assign(run=k) for k, h in histories.items()], ignore_index=True)
    return [
        Panel(
            "cl_gradnorm",
            "Gradient norms",
            grad_norm_history_figure(histories, threshold, diverged),
            both[["run", "step", "grad_norm", "grad_norm_clipped", "clipped", "nonfinite"]],
            "gradient-norms.csv",
            "The global L2 norm of the gradient of all parameters at every training step, before clipping, for the "
            "three twins (log scale). The dashed line is the threshold c: above it, clipping by norm rescales the "
            "whole gradient to norm c (direction kept); clipping by value clamps each entry to [−c, c] (direction "
            "changed). White black-edged markers (triangles: by norm, diamonds: by value) mark the steps where "
            "clipping changed the gradient, and the dash-dotted line the first of them. A vertical dotted line "
            "marks a run that diverged (NaN or inf). The runs coincide exactly until the first clip; where they "
            "coincide, the thinner dashed and dotted lines lie on the thick solid one.",
        ),
        Panel(
            "cl_loss",
            "Loss",
            loss_history_figure(histories, diverged),
            both[["run", "step", "loss"]],
            "loss.csv",
            "The training loss of each twin (log scale): squared error summed over output units and over "
            f"{'the last step' if loss_on == 'last' else 'every step'}, averaged over the batch.",
        ),
    ]


def dh_panel(dh: np.ndarray, twin: str) -> Panel:
    """||dL/dh_t|| during training for one twin: (training steps, T)."""
    frame = pd.DataFrame(dh, columns=[f"t{t + 1}" for t in range(dh.shape[1])]).assign(step=np.arange(len(dh)))
    return Panel(
        "cl_dh",
        f"‖∂L/∂h(t)‖ during training ({TWIN_LABELS[twin]})",
        dh_heatmap_figure(dh, TWIN_LABELS[twin]),
        frame,
        "dL-dh-during-training.csv",
        "‖∂L/∂h(t)‖ at every time step t (columns) and every training step (rows), log colour scale: how much "
        "gradient each hidden state receives as training goes on. Vanishing shows as blue towards early t; an "
        "explosion as a red band at the steps where the gradient norm spikes.",
    )


# -- calculator ------------------------------------------------------------------------------------


def _shown_value(row) -> str:

    v, unit = row["value"], row["unit"]
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if unit == "bytes":
        return f"{format_bytes(v)} ({int(v):,} B)"
    if unit == "FLOP":
        return f"{v:.3e}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def calculator_table(table: pd.DataFrame) -> pd.DataFrame:
    """The calculator's estimate table as the page shows it: values as text with their units, and the
    sentence saying how each was obtained."""
    shown = table.assign(shown=table.apply(_shown_value, axis=1))
    return shown[["quantity", "shown", "unit", "kind", "how"]].rename(
        columns={"shown": "value", "how": "how it was obtained"}
    )


def activation_memory_figure(
    cfg: ModelConfig, input_size: int, output_size: int, batch: int, layers: int, trunc: int
) -> Panel:
    """Estimated activation memory against sequence length: full BPTT, gradient checkpointing every
    ceil(sqrt(T)) steps (cells with a formula for it: not the diagonal cells, whose bytes are measured)
    and a TBPTT window ``trunc`` (0 = none), for the settings' cell and sizes."""

    Ts = np.unique(np.linspace(1, max(cfg.seq_len * 2, 10), 40).astype(int))
    act = "linear" if cfg.cell == "rnn" and cfg.activation == "linear" else "tanh"

    def held(t: int) -> int:
        return activation_bytes(cfg.cell, input_size, cfg.hidden_size, output_size, int(t), batch, layers, act)

    full = [held(t) for t in Ts]
    hover = "T = %{x}<br>%{y:.4g} MiB<extra></extra>"
    fig = go.Figure(
        go.Scatter(x=Ts, y=np.array(full) / 2**20, mode="lines", name="full BPTT (estimated)", hovertemplate=hover)
    )
    frame = pd.DataFrame({"seq_len": Ts, "full_bptt_bytes": full})
    if cfg.cell not in DIAGONAL_CELLS:
        I, H, O = input_size, cfg.hidden_size, output_size
        ck = [checkpoint_activation_bytes(cfg.cell, I, H, O, int(t), batch, layers, act) for t in Ts]
        frame["checkpointing_bytes"] = ck
        fig.add_trace(
            go.Scatter(x=Ts, y=np.array(ck) / 2**20, mode="lines", name="checkpointing every ⌈√T⌉ steps (estimated)",
                       line=dict(dash="dot"), hovertemplate=hover)
        )  # fmt: skip
    if trunc:
        win = [held(min(t, trunc)) for t in Ts]
        frame["tbptt_window_bytes"] = win
        fig.add_trace(
            go.Scatter(x=Ts, y=np.array(win) / 2**20, mode="lines", name=f"TBPTT window k = {trunc} (estimated)",
                       line=dict(dash="dash"), hovertemplate=hover)
        )  # fmt: skip
    fig.add_vline(x=cfg.seq_len, line=dict(color="#555", dash="dot"), annotation_text=f"T = {cfg.seq_len}")
    fig.update_layout(
        title=f"Activation memory held for backward, batch {batch} (estimated)",
        xaxis_title="sequence length T (steps)",
        yaxis_title="memory (MiB)",
        legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0),
    )
    return Panel(
        "ca_memory",
        "Activation memory",
        style(fig),
        frame,
        "activation-memory.csv",
        "The bytes autograd keeps between the forward and the backward pass, by PyTorch's own saving rules, "
        "as the sequence grows: full BPTT stores every step's activations, so memory grows linearly with T; "
        "TBPTT with window k only ever holds k steps; checkpointing keeps about sqrt(T) states and recomputes one "
        "segment at a time. Parameters, gradients and optimiser state are not included here (the table's total "
        "training memory adds them).",
    )


# -- click to unroll (one cell of the gradient-flow heatmap) ------------------------------------------


def unroll_panels(u) -> list[Panel]:
    """The chain J_t ⋯ J_{s+1} behind one clicked cell (a :class:`bptt_core.flow.unroll.Unroll`), as panels:
    the running product (ending at the clicked value), each factor's singular values, the saturated
    units, the non-normality of W, and the cell's term of ∂ℓ_t/∂W_hh where it was computed."""

    t1, s1, n = u.t + 1, u.s + 1, u.t - u.s
    name = norm_symbol(u.norm)
    steps = u.factor_steps + 1
    sv = u.factor_singular_values
    sv_frame = pd.DataFrame(sv, columns=[f"sigma_{i + 1}" for i in range(sv.shape[1])]).assign(factor_step=steps)
    sat = pd.DataFrame({f"saturated_{k}": c for k, c in u.saturated_counts.items()}).assign(factor_step=steps)
    k = np.arange(len(u.power_log10))
    normal = pd.DataFrame(
        {"k": k, "log10_norm_W_power": u.power_log10, "log10_rho_power": u.rho_log10_powers, "gap": u.transient_gap}
    )
    peak = float(np.nanmax(u.transient_gap)) if len(k) else 0.0
    out = [
        Panel(
            "gf_unroll",
            f"∂h({t1})/∂h({s1}) unrolled",
            unroll_chain_figure(u),
            u.table(),
            f"unroll-t{t1}-s{s1}.csv",
            f"The clicked cell is the product of {n} step Jacobians, J({s1 + 1}) up to J({t1}). The line is the "
            f"norm ({name}) of the product after each factor; it ends at the clicked value, "
            f"{raw_label(u.value)}. The dashed line multiplies the factors' own norms: it bounds the product "
            "from above, and the gap between the two is how much the factors' directions cancel. The bars are "
            "each factor's norm: above 1 (red) a step can stretch a gradient, below 1 it shrinks every direction."
            + (f" {u.note}" if u.note else ""),
        ),
        Panel(
            "gf_unroll_sv",
            "Singular values of each factor",
            unroll_singular_values_figure(u),
            sv_frame,
            f"unroll-singular-values-t{t1}-s{s1}.csv",
            "Every singular value of each factor J_i: a factor whose singular values all lie below 1 shrinks "
            "every direction of the gradient passing through it; one above 1 stretches some direction.",
        ),
        Panel(
            "gf_unroll_sat",
            "Saturated or off units",
            unroll_saturation_figure(u, SATURATION_THRESHOLD),
            sat,
            f"unroll-saturation-t{t1}-s{s1}.csv",
            f"At each step of the chain, how many units have a slope below {SATURATION_THRESHOLD:g} of its "
            "largest possible value (tanh saturated, ReLU off; a diagonal cell's unit with |a_t| that small "
            "is shut): such a unit passes almost no gradient back through that step.",
        ),
    ]
    if len(u.power_log10):  # the cells whose step Jacobians come from a fixed recurrent matrix
        out.append(Panel(
            "gf_unroll_nonnormal",
            "Non-normality of W",
            nonnormality_figure(u),
            normal,
            f"unroll-nonnormality-t{t1}-s{s1}.csv",
            f"‖W^k‖₂ of the recurrent matrix ({u.matrix}) against ρ^k, ρ = {u.rho:.3g}, for k up to {n}. "
            f"For a normal matrix the two are equal; here the largest gap is {peak:.3g} decades and Henrici's "
            f"departure from normality is {u.departure:.3g} (0 = normal). A gap means powers of W can grow for "
            "a while even when ρ < 1 (Trefethen & Embree 2005).",
        ))  # fmt: skip
    if u.contribution_norms is not None:
        terms = u.contribution_norms
        share = float(terms[u.s] / terms.sum()) if terms.sum() > 0 else float("nan")
        out.append(
            Panel(
                "gf_unroll_contrib",
                f"Terms of ∂ℓ({t1})/∂W_hh",
                unroll_contribution_figure(u),
                pd.DataFrame({"source_step": np.arange(1, len(terms) + 1), "frobenius_norm": terms}),
                f"unroll-contribution-t{t1}-s{s1}.csv",
                f"The gradient of the loss at step {t1} with respect to W_hh is a sum of one term per source "
                f"step i ≤ {t1}, each carried back through the chain from {t1} to i. The term through the "
                f"clicked s = {s1} (red) has Frobenius norm {terms[u.s]:.3g}, {share:.1%} of the terms' norms "
                "summed.",
            )
        )
    return out


# -- training player (a run's weight snapshots, one animation frame each) -----------------------------


def player_panels(frames, twin_label: str, prefix: str = "cl_play", active: int = 0) -> list[Panel]:
    """The player's animated figures for one run's frames (:func:`bptt_core.learning.player.frames`): the
    gradient-flow heatmap, ‖∂L/∂h_t‖, the eigenvalues with their paths, the singular values and the top
    Lyapunov exponents at every snapshot. Plotly's own frames: play and the slider need no server.
    ``prefix``: the figures' keys (``{prefix}_heatmap``, ...; one player per page); ``active``: the frame
    (0-based) each figure opens at (:func:`bptt_core.figures.player.show_frame`)."""

    table = frames_table(frames)
    n = len(frames)
    first, last = frames[0], frames[-1]
    kept = ", ".join(f"step {f.step} ({' '.join(f.reasons)})" for f in frames[:3]) + (", …" if n > 3 else "")
    common = (
        f"{n} snapshots of the weights of the {twin_label} run, from step {first.step} (loss {first.loss:.4g}) "
        f"to step {last.step} (loss {last.loss:.4g}): {kept}. "
        "Each frame is measured on one fixed probe sequence, so the frames differ only through the weights. "
        "▶ Play and the slider run in your browser (every frame is part of the figure). The CSV has one row "
        "per snapshot: its step, loss, why it was kept, ρ, σ₁, the top Lyapunov exponent and the decay rate."
    )
    paths = eigen_paths([f.eigenvalues for f in frames])
    specs = [
        (f"{prefix}_heatmap", "Gradient flow over training", player_heatmap_figure(frames),
         "The gradient-flow heatmap log10 ‖∂h(t)/∂h(s)‖ at each snapshot, on one colour scale for all of them. "),
        (f"{prefix}_dh", "‖∂L/∂h(t)‖ over training", player_dh_figure(frames),
         "How much gradient each hidden state receives from the probe's last-step loss, at each snapshot. "),
        (f"{prefix}_eig", "Eigenvalues over training", player_eigenvalue_figure(frames, paths),
         f"The eigenvalues of {first.matrix} at each snapshot, with the path each has taken so far; outside "
         "the unit circle a direction grows step after step. "),
        (f"{prefix}_sv", "Singular values over training", player_singular_values_figure(frames),
         f"The singular values of {first.matrix} at each snapshot (while σ₁ < 1/γ gradients cannot explode: Pascanu et al. 2013). "),
        (f"{prefix}_lyap", "Lyapunov exponents over training", player_lyapunov_figure(frames),
         "The top Lyapunov exponents (log10 per step) at each snapshot: above 0, nearby trajectories separate. "),
    ]  # fmt: skip
    if active:
        for _, _, fig, _ in specs:
            show_frame(fig, active)
    return [Panel(k, title, fig, table, "player-frames.csv", words + common) for k, title, fig, words in specs]


# -- compare mode (A against B) -----------------------------------------------------------------------


def flow_metrics(s: FlowSummary) -> dict:
    """The Gradient flow page's headline numbers, by name (None where one does not exist)."""
    return {
        "decay rate (log10 per step)": s.rate,
        "per-step factor": 10**s.rate if np.isfinite(s.rate) else None,
        "memory horizon (steps)": s.horizon,
        "γσ₁ (Pascanu)": s.gamma_sigma1,
    }


def compare_flow_panels(
    L_a: np.ndarray,
    L_b: np.ndarray,
    summaries: tuple[FlowSummary, FlowSummary],
    norm="fro",
    blocks: tuple[str, str] = ("h", "h"),
) -> tuple[pd.DataFrame, list[Panel]]:
    """(metrics as A, B and B − A; A's and B's heatmaps on one colour range, the log10 ratio B / A).

    Both heatmaps are white at a norm of 1 and share zmin/zmax (:func:`bptt_core.figures.ranges.shared_range`),
    so one colour is one value on both sides."""

    norm = Norm.of(norm)
    zr = shared_range(L_a, L_b)
    heats = []
    for side, L, block in (("A", L_a, blocks[0]), ("B", L_b, blocks[1])):
        fig = gradient_flow_heatmap(L, norm, block, centre="one", zrange=zr)
        fig.update_layout(title_text=f"{side}: {fig.layout.title.text}")
        heats.append(
            Panel(
                f"gf_cmp_{side.lower()}",
                f"Gradient flow of {side}",
                fig,
                matrix_frame(L, "t", "s"),
                f"gradient-flow-{side}.csv",
                f"{side}'s gradient-flow heatmap, on the colour range both share ({raw_label(zr[0])} to "
                f"{raw_label(zr[1])}; white is a norm of 1), so one colour means one value on both sides.",
            )
        )
    D = C.log_ratio(L_a, L_b)
    finite = D[np.isfinite(D)]
    spread = f"from {finite.min():+.3g} to {finite.max():+.3g} decades" if finite.size else "nowhere finite"
    ratio = Panel(
        "gf_cmp_ratio",
        "log10 ratio B / A",
        log_ratio_figure(D),
        matrix_frame(D, "t", "s").rename(columns={"log10_norm": "log10_ratio_B_over_A", "norm": "ratio"}),
        "gradient-flow-ratio.csv",
        f"log10 of B's norm over A's at every pair s ≤ t of the {D.shape[0]} steps both have: red where B carries "
        f"more gradient from s to t, blue where it carries less, white where they are equal. Here it ranges {spread}.",
    )
    table = C.metrics_table(flow_metrics(summaries[0]), flow_metrics(summaries[1]))
    return table, [*heats, ratio]


# -- compare mode: Spectrum, Truncated BPTT, Clipping ----------------------------------------------------


def compare_spectrum_panels(spec_a, lam_a, spec_b, lam_b) -> tuple[pd.DataFrame, list[Panel]]:
    """(ρ, σ₁, γσ₁, λ₁ as A, B and B − A; A's and B's eigenvalues in one complex plane, their singular
    values on one axis, their Lyapunov spectra on one axis)."""

    table = C.metrics_table(C.spectrum_metrics(spec_a, lam_a), C.spectrum_metrics(spec_b, lam_b))
    (eig_a, sv_a), (eig_b, sv_b) = spectrum_frames(spec_a), spectrum_frames(spec_b)
    matrix = spec_a.matrix if spec_a.matrix == spec_b.matrix else f"{spec_a.matrix} (A), {spec_b.matrix} (B)"
    la, lb = np.asarray(lam_a, dtype=float), np.asarray(lam_b, dtype=float)
    lyap = pd.concat(
        [pd.DataFrame({"model": side, "i": np.arange(1, len(v) + 1), "lyapunov_log10_per_step": v})
         for side, v in (("A", la), ("B", lb))], ignore_index=True,
    )  # fmt: skip
    n = min(len(la), len(lb))
    both = "both sides' exponents agree" if n and np.array_equal(la[:n], lb[:n]) else "they differ"
    panels = [
        Panel(
            "sp_cmp_eig", "Eigenvalues of A and B",
            compare_eigenvalue_figure(spec_a.eigenvalues, spec_b.eigenvalues, matrix=matrix),
            pd.concat([eig_a.assign(model="A"), eig_b.assign(model="B")], ignore_index=True),
            "eigenvalues-A-B.csv",
            f"A's eigenvalues (circles) and B's (crosses) in one complex plane, with the unit circle: ρ = "
            f"{spec_a.rho:.4g} for A and {spec_b.rho:.4g} for B. Inside the circle a component decays at every "
            "step of a linear RNN, outside it grows.",
        ),
        Panel(
            "sp_cmp_sv", "Singular values of A and B",
            compare_singular_values_figure(spec_a.singular_values, spec_b.singular_values,
                                             (spec_a.gamma, spec_b.gamma), matrix=matrix),
            pd.concat([sv_a.assign(model="A"), sv_b.assign(model="B")], ignore_index=True),
            "singular-values-A-B.csv",
            f"Both models' singular values on one axis, with 1/γ dashed: σ₁ = {spec_a.sigma1:.4g} for A and "
            f"{spec_b.sigma1:.4g} for B, so γσ₁ = {spec_a.gamma * spec_a.sigma1:.4g} and "
            f"{spec_b.gamma * spec_b.sigma1:.4g} (below 1: gradients must vanish; Pascanu et al. 2013).",
        ),
        Panel(
            "sp_cmp_lyap", "Lyapunov spectra of A and B", compare_lyapunov_figure(la, lb), lyap,
            "lyapunov-A-B.csv",
            f"Both driven networks' Lyapunov exponents (log10 growth per step) as grouped bars on one axis; on the "
            f"first {n} exponents both have, {both}.",
        ),
    ]  # fmt: skip
    return table, panels


def compare_truncation_panels(
    L_a: np.ndarray, L_b: np.ndarray, k1: int, k2: int, norm="fro", blocks: tuple[str, str] = ("h", "h")
) -> tuple[pd.DataFrame, list[Panel]]:
    """(updates, dropped fraction and largest dropped as A, B and B − A; A's and B's truncation
    heatmaps on one colour range). k1, k2 above a side's T are taken as that T."""

    zr = shared_range(L_a, L_b)
    views, panels = [], []
    for side, L, block in (("A", L_a, blocks[0]), ("B", L_b, blocks[1])):
        T = L.shape[0]
        v = truncation_figure(L, k1, k2, norm, block)
        drop = ~_kept(T, v.k1, v.k2) & ~np.isnan(L)  # as truncation_figure paints it
        fig = gradient_flow_heatmap(L, Norm.of(norm), block, mask=drop, zrange=zr)
        fig.update_layout(title=f"{side}: TBPTT({v.k1}, {v.k2}), the dropped paths in grey")
        views.append(v)
        panels.append(
            Panel(
                f"tb_cmp_{side.lower()}", f"Truncation mask of {side}", fig, v.panel.data,
                f"tbptt-mask-{side}.csv",
                f"{side}'s gradient-flow heatmap with the pairs TBPTT({v.k1}, {v.k2}) drops in grey, on the colour "
                f"range both sides share ({raw_label(zr[0])} to {raw_label(zr[1])}), so one colour is one "
                f"norm on both sides. {100 * v.dropped_fraction:.1f} % of {side}'s pairs s ≤ t are dropped.",
            )
        )  # fmt: skip
    table = C.metrics_table(C.truncation_metrics(views[0]), C.truncation_metrics(views[1]))
    return table, panels


def _kept(T: int, k1: int, k2: int) -> np.ndarray:

    return tbptt_kept_mask(T, k1, k2)


def compare_clipping_panels(runs_a: dict, runs_b: dict, twin: str) -> tuple[pd.DataFrame, list[Panel]]:
    """(every twin's divergence step, first clip, clip count and final loss as A, B and B − A; the
    ``twin`` run's gradient-norm histories of A and B on one axis, its CSV the two and log10 B / A on
    the steps both ran)."""

    table = C.twins_metrics_table(runs_a, runs_b)
    ha, hb = runs_a[twin]["history"], runs_b[twin]["history"]
    diff = C.history_difference(ha, hb)
    finite = diff["log10 B/A"].to_numpy(float)
    finite = finite[np.isfinite(finite)]
    spread = f"from {finite.min():+.3g} to {finite.max():+.3g} decades" if finite.size else "nowhere finite"
    label = TWIN_LABELS[twin]
    fig = compare_history_figure(ha, hb)
    fig.update_layout(title=f"{label}: global gradient norm (before clipping), A and B")
    panel = Panel(
        "cl_cmp_gradnorm", f"Gradient norms of A and B ({label})", fig, diff, f"gradient-norms-{twin}-A-B.csv",
        f"The global gradient norm before clipping at every training step of the {label} run, A (blue) and B "
        f"(red) on one axis (log scale), both trained with the same training settings. On the {len(diff)} steps "
        f"both ran, log10 B / A ranges {spread} (the CSV holds it step by step).",
    )  # fmt: skip
    return table, [panel]
