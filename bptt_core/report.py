"""What each dashboard page computes, from plain settings, and the self-contained HTML report.

The pages call the ``*_of`` functions below through ``st.cache_data`` (every argument is a frozen
:class:`ModelConfig` or a plain value, so they hash); :func:`build_report` calls the same functions
and the same figure builders, so the report shows exactly what the pages show.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from . import figures as F
from .build import build_model, build_task
from .config import DIAGONAL_CELLS, ModelConfig, check_jacobian_memory, state_size
from .jacobians import decay_rate, flow_cost, jacobian_log_norms, lag_profile, loss_gradient_norms, memory_horizon
from .spectra import Spectrum, lyapunov_exponents, spectrum
from .tasks import TASK_MIN_SEQ_LEN
from .verdicts import gradient_verdict  # noqa: F401 - re-exported: the pages word their verdicts through it

# Above this many multiply-adds the gradient-flow matrix takes seconds: the page asks first.
FLOW_FLOP_BUDGET = 2e11
SPECTRAL_NORM_FACTOR = 12  # the spectral norm costs roughly this many chain passes


# -- checking a configuration ---------------------------------------------------------------------


def problems(cfg: ModelConfig) -> tuple[list[str], list[str]]:
    """(errors, notes) about a combination of settings each valid on its own.

    Errors stop the analysis (the page shows them instead of a traceback); notes say what a
    setting does not do here.
    """
    errors, notes = [], []
    need = TASK_MIN_SEQ_LEN[cfg.task]
    if cfg.seq_len < need:
        errors.append(f"The {cfg.task} task needs a sequence length of at least {need}; it is {cfg.seq_len}.")
    try:
        check_jacobian_memory(cfg.cell, cfg.hidden_size, cfg.seq_len, cfg.num_layers)
    except ValueError as e:
        errors.append(str(e))
    if cfg.cell in DIAGONAL_CELLS and cfg.spectral_radius:
        errors.append(
            f"The {cfg.cell} cell has no recurrent matrix to rescale (its recurrence is the diagonal a(x_t)): "
            "set the spectral radius to 0" + (", and the LRU's ring with r_min / r_max." if cfg.cell == "lru" else ".")
        )
    if cfg.cell == "lru" and (cfg.init != ModelConfig.init or cfg.gain != 1.0):
        notes.append("The LRU ignores the initialisation and gain: it always takes its ring initialisation.")
    if cfg.cell != "rnn" and cfg.activation != "tanh":
        notes.append(
            f"The activation ({cfg.activation}) applies to the vanilla RNN only; the {cfg.cell} uses its own gates."
        )
    if cfg.cell != "lstm" and cfg.forget_bias:
        notes.append(f"The forget-gate bias ({cfg.forget_bias:g}) applies to the LSTM only.")
    if cfg.init == "sparse" and cfg.gain != 1.0:
        notes.append("The sparse init ignores the gain: its spectral radius (0.95 unless set) fixes the scale.")
    return errors, notes


def flow_flops(cfg: ModelConfig, norm="fro") -> float:
    """Rough multiply-adds of the gradient-flow matrix by the method the engine will use."""
    if cfg.cell in DIAGONAL_CELLS:  # the diagonal fast path: about T^2 H / 2 products, either norm
        return 0.5 * cfg.seq_len**2 * cfg.hidden_size
    S = state_size(cfg.cell, cfg.hidden_size, cfg.num_layers)
    spectral = norm in (2, "2")
    return flow_cost(2 if spectral else "fro", cfg.seq_len, S) * (SPECTRAL_NORM_FACTOR if spectral else 1)


# -- the computations ------------------------------------------------------------------------------


def model_and_sequence(cfg: ModelConfig, upload=None):
    """The seeded model, readout, and the first sequence of the task: x (T, I), y (T, O).

    ``upload``: a :class:`bptt_core.sources.Upload`: the user's trained model instead (and their
    sequence, if any); ``cfg`` should then be ``sources.effective_config(cfg, upload)``.
    """
    if upload is not None:
        from .sources import resolve

        return resolve(cfg, upload)
    rnn, readout = build_model(cfg)
    data = build_task(cfg)
    return rnn, readout, data.x[:, 0], data.y[:, 0], data


def flow_matrix_of(cfg: ModelConfig, norm="fro", block: str = "h", upload=None) -> np.ndarray:
    """L[t, s] = log10 ||dh_t/dh_s|| (T, T) for the first sequence."""
    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    return jacobian_log_norms(rnn, x, norm=2 if norm in (2, "2") else "fro", block=block if cfg.cell == "lstm" else "h")


@dataclass
class FlowSummary:
    profile: np.ndarray  # (T,) mean log10 norm at lag k
    rate: float  # fitted log10 decay per step
    horizon: int | None  # first lag below threshold x lag 0
    threshold: float
    gamma_sigma1: float | None  # Pascanu's per-step bound (vanilla RNN only)


def flow_summary(L: np.ndarray, spec: Spectrum | None, cell: str, threshold: float = 1e-3) -> FlowSummary:
    gs = spec.gamma * spec.sigma1 if spec is not None and cell == "rnn" else None
    return FlowSummary(lag_profile(L), decay_rate(L), memory_horizon(L, threshold), threshold, gs)


def loss_gradients_of(cfg: ModelConfig, upload=None) -> np.ndarray:
    """||dL/dh_t|| (T,) for the loss on the last step."""
    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    return loss_gradient_norms(rnn, readout, x, y)


def contributions_of(cfg: ModelConfig, t: int, upload=None) -> np.ndarray:
    """Frobenius norms (t + 1,) of the per-step terms of dl_t/dW_hh (t 0-indexed)."""
    from .truncation import contribution_norms

    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    # W_hh (layer 0 of a stack); a diagonal cell's first parameter (the LRU's nu_log, minGRU's W_z, ...)
    param = "weight_hh_l0" if hasattr(rnn, "weight_hh_l0") else next(n for n, _ in rnn.named_parameters())
    return contribution_norms(rnn, readout, x, y, t, param)


def spectrum_of(cfg: ModelConfig, upload=None) -> Spectrum:
    rnn, *_ = model_and_sequence(cfg, upload)
    return spectrum(rnn)


def lyapunov_of(cfg: ModelConfig, max_exponents: int = 64, upload=None) -> np.ndarray:
    """The top Lyapunov exponents in log10 per step (the units of the decay rate)."""
    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    S = state_size(cfg.cell, cfg.hidden_size)
    return lyapunov_exponents(rnn, x, n_exponents=min(S, max_exponents)) / math.log(10)


def kept_mask_of(T: int, k1: int, k2: int) -> np.ndarray:
    from .truncation import tbptt_kept_mask

    return tbptt_kept_mask(T, k1, k2)


def comparison_of(cfg: ModelConfig, k1: int, k2: int, repeats: int = 3, upload=None) -> pd.DataFrame:
    from .truncation import compare_variants

    rnn, readout, x, y, data = model_and_sequence(cfg, upload)
    ks = tuple(k for k in (10, 20) if k <= cfg.seq_len and (k, k) != (k1, k2))
    return compare_variants(rnn, readout, x, y, ks=ks, k1k2=(k1, k2), loss_mask=data.loss_mask, repeats=repeats)


# -- tables (what the CSV downloads hold) -----------------------------------------------------------


def matrix_frame(L: np.ndarray, row: str = "t", col: str = "s") -> pd.DataFrame:
    """A (T, T) log10 matrix as a long table: 1-indexed row, col, log10 value and raw value."""
    T = L.shape[0]
    r, c = np.meshgrid(np.arange(1, T + 1), np.arange(1, L.shape[1] + 1), indexing="ij")
    ok = ~np.isnan(L)
    vals = L[ok]
    return pd.DataFrame(
        {row: r[ok], col: c[ok] - (1 if col == "k" else 0), "log10_norm": vals, "norm": [F.raw_label(v) for v in vals]}
    )


def profile_frame(s: FlowSummary) -> pd.DataFrame:
    k = np.arange(len(s.profile))
    d = {"lag_k": k, "mean_log10_norm": s.profile}
    if s.gamma_sigma1:
        d["bound_log10"] = s.profile[0] + k * math.log10(s.gamma_sigma1)
    return pd.DataFrame(d)


def spectrum_frames(spec: Spectrum) -> tuple[pd.DataFrame, pd.DataFrame]:
    ev = spec.eigenvalues
    eig = pd.DataFrame({"real": ev.real, "imag": ev.imag, "abs": np.abs(ev)})
    sv = pd.DataFrame({"i": np.arange(1, len(spec.singular_values) + 1), "singular_value": spec.singular_values})
    return eig, sv


# -- the report ------------------------------------------------------------------------------------


def flow_figures(
    cfg: ModelConfig, norm="fro", block: str = "h", threshold: float = 1e-3, lecture: bool = False, upload=None
):
    """The gradient-flow page's figures, as (title, figure, caption) triples."""
    L = flow_matrix_of(cfg, norm, block, upload)
    spec = spectrum_of(cfg, upload)
    s = flow_summary(L, spec, cfg.cell, threshold)
    heat = F.gradient_flow_heatmap(L, norm, block)
    out = [
        (
            "Gradient flow",
            heat,
            f"log10 {F.flow_symbol(block)} norms for every pair s ≤ t; white is the lag-0 norm, blue "
            "smaller (vanishing), red larger (exploding).",
        ),  # fmt: skip
        (
            "Norm against lag",
            F.lag_profile_figure(
                s.profile,
                rate=s.rate,
                gamma_sigma1=s.gamma_sigma1,
                horizon=s.horizon,
                threshold=threshold,
                norm=norm,
                block=block,
            ),  # fmt: skip
            f"Fitted decay {s.rate:.3g} log10 per step; memory horizon {s.horizon if s.horizon is not None else 'beyond the sequence'}.",
        ),
        ("‖∂L/∂h(t)‖", F.loss_gradient_figure(loss_gradients_of(cfg, upload)), "The loss is taken on the last step."),
    ]
    return [(a, F.style(f, lecture), c) for a, f, c in out]


def spectrum_figures(cfg: ModelConfig, lecture: bool = False, upload=None):
    spec = spectrum_of(cfg, upload)
    L = flow_matrix_of(cfg, upload=upload)
    lam = lyapunov_of(cfg, upload=upload)
    verdict = spec.verdict(plain=False, rate=decay_rate(L), cell=cfg.cell)
    out = [
        ("Eigenvalues", F.eigenvalue_figure(spec.eigenvalues, spec.rho, spec.matrix), f"ρ = {spec.rho:.4g}."),
        ("Singular values", F.singular_values_figure(spec.singular_values, spec.gamma, spec.matrix), verdict),
        ("Lyapunov spectrum", F.lyapunov_figure(lam, decay_rate(L)), "Top exponents, log10 growth per step."),
    ]
    return [(a, F.style(f, lecture), c) for a, f, c in out]


def build_report(
    cfg: ModelConfig,
    norm="fro",
    block: str = "h",
    threshold: float = 1e-3,
    k1k2: tuple[int, int] | None = None,
    train_cfg=None,
    lecture: bool = False,
    upload=None,
) -> str:
    """One self-contained HTML page (plotly.js inlined once) with every figure for these settings.

    ``k1k2``: add the truncated-BPTT heatmap and the measured comparison. ``train_cfg``: add the
    clipping twin runs (a :class:`bptt_core.training.TrainConfig`; this trains three models from the
    settings, not from an upload). ``upload``: a :class:`bptt_core.sources.Upload` to report on instead.
    """
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")
    upload_notes = []
    if upload is not None:
        from .sources import effective_config, input_notes

        upload_notes = input_notes(cfg, upload)
        cfg = effective_config(cfg, upload)
    errors, notes = problems(cfg)
    notes = upload_notes + notes
    if errors:
        raise ValueError("; ".join(errors))
    sections: list[tuple[str, list]] = [
        ("Gradient flow", flow_figures(cfg, norm, block, threshold, lecture, upload)),
        ("Spectrum", spectrum_figures(cfg, lecture, upload)),
    ]
    tables: list[tuple[str, pd.DataFrame]] = []
    if k1k2 is not None:
        k1, k2 = (min(int(k), cfg.seq_len) for k in k1k2)
        L = flow_matrix_of(cfg, norm, block, upload)
        keep = kept_mask_of(cfg.seq_len, k1, k2)
        drop = ~keep & ~np.isnan(L)
        fig = F.gradient_flow_heatmap(L, norm, block, mask=drop)
        fig.update_layout(title=f"TBPTT({k1}, {k2}): contributions dropped by truncation in grey")
        df = comparison_of(cfg, k1, k2, upload=upload)
        sections.append(
            (
                "Truncated BPTT",
                [
                    ("Truncation mask", F.style(fig, lecture), "Grey: pairs (t, s) whose gradient truncation drops."),
                    ("Comparison", F.style(F.comparison_figure(df), lecture), "Measured on this machine."),
                ],
            )
        )
        tables.append(("Full BPTT vs TBPTT vs RTRL (measured)", df))
    if train_cfg is not None:
        from .training import twin_runs

        initial = None
        if upload is not None:
            from .sources import training_start

            initial, note = training_start(cfg, upload)
            notes.append(f"Clipping: {note}")
        runs = twin_runs(cfg, train_cfg, initial=initial)
        hist = {k: r.history for k, r in runs.items()}
        div = {k: r.diverged_at for k, r in runs.items()}
        sections.append(
            (
                "Clipping",
                [
                    (
                        "Gradient norms",
                        F.style(F.grad_norm_history_figure(hist, train_cfg.clip_threshold, div), lecture),
                        "",
                    ),
                    ("Loss", F.style(F.loss_history_figure(hist, div), lecture), ""),
                ],
            )
        )
    return _render(cfg, sections, tables, notes, dict(norm=str(norm), block=block, threshold=threshold))


def _render(cfg: ModelConfig, sections, tables, notes, extra: dict) -> str:
    parts = []
    first = True
    for name, figs in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for title, fig, caption in figs:
            assert isinstance(fig, go.Figure), title
            fig_html = fig.to_html(full_html=False, include_plotlyjs=first, config=F.PLOTLY_CONFIG)
            first = False
            parts.append(f"<figure>{fig_html}<figcaption>{html.escape(caption)}</figcaption></figure>")
    for title, df in tables:
        parts.append(f"<h3>{html.escape(title)}</h3>" + df.to_html(index=False, na_rep="—", float_format="%.4g"))
    settings = json.dumps({**cfg.to_dict(), **extra}, indent=2)
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>BPTT Explorer report</title>
<style>
body {{ font-family: {F.FONT}; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.45; }}
figure {{ margin: 1.5em 0; }} figcaption {{ color: #555; font-size: 0.95em; }}
pre {{ background: #f6f6f6; padding: 1em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; }}
</style></head><body>
<h1>BPTT Explorer report</h1>
<p>Every number below was computed for these settings by <code>bptt_core</code> (torch {torch.__version__}).</p>
<pre>{html.escape(settings)}</pre>
{"<ul>" + note_html + "</ul>" if note_html else ""}
{"".join(parts)}
</body></html>
"""
