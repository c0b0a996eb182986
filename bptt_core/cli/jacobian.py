"""``bptt jacobian``: the gradient-flow matrix log10 ||dh_t/dh_s|| as CSV, .npy and an HTML heatmap, with a
one-paragraph summary, computed by the same function the Gradient flow page calls."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from bptt_core.config import Block, ModelConfig, Norm

from .options import (
    add_budget_argument,
    add_model_arguments,
    add_norm_arguments,
    add_out_argument,
    add_upload_arguments,
    announce_cost,
    config_from_args,
    parse_norm,
    upload_from_args,
    write_figure_html,
    write_json,
    write_matrix_csv,
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "jacobian",
        help="the gradient-flow matrix log10 ||dh_t/dh_s|| as CSV, .npy and an HTML heatmap",
        description="Build the model from the settings, run it on the first sequence of the task, and write "
        "the exact gradient-flow matrix L[t, s] = log10 ||dh_t/dh_s|| (jacobian.csv, jacobian.npy), "
        "its heatmap (heatmap.html, self-contained) and the settings (config.json) to DIR.",
    )
    add_model_arguments(p)
    add_upload_arguments(p)
    add_norm_arguments(p)
    p.add_argument("--lag", action="store_true", help="also write the (t, k = t - s) lag view; heatmap by lag")
    add_budget_argument(p)
    add_out_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported when the command runs: building the parser (bptt --help) must not load torch.
    from bptt_core.analyses.cost import flow_cost
    from bptt_core.analyses.numbers import flow_matrix_of, model_and_sequence, problems
    from bptt_core.analyses.sources import effective_config
    from bptt_core.figures.heatmaps import gradient_flow_heatmap
    from bptt_core.flow.jacobians import block_slice
    from bptt_core.flow.summary import lag_view
    from bptt_core.models.recurrent import cell_view

    cfg = config_from_args(args)
    norm = parse_norm(args.norm)
    upload = upload_from_args(args)
    if upload is not None:
        cfg = effective_config(cfg, upload)
    errors = problems(cfg)[0]  # combinations the pages refuse too (a task too long for T, ...)
    if errors:
        raise ValueError("; ".join(errors))
    rnn = model_and_sequence(cfg, upload)[0]  # cheap, and checks the task's input width
    block_slice(cell_view(rnn), args.block, args.layer)  # checks the block and the layer
    announce_cost(flow_cost(cfg, norm), args)  # before the heavy work
    L = flow_matrix_of(cfg, norm, args.block, upload, layer=args.layer)  # (T, T): the Gradient flow page's numbers

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    T = cfg.seq_len
    steps = list(range(1, T + 1))  # 1-indexed, as in the equations and the heatmap
    np.save(out / "jacobian.npy", L)
    write_matrix_csv(out / "jacobian.csv", L, steps, steps, "t\\s")
    files = ["jacobian.csv", "jacobian.npy"]
    if args.lag:
        write_matrix_csv(out / "jacobian_lag.csv", lag_view(L), steps, list(range(T)), "t\\k")
        files.append("jacobian_lag.csv")
    fig = gradient_flow_heatmap(lag_view(L) if args.lag else L, norm=norm, block=args.block, lag=args.lag)
    write_figure_html(out / "heatmap.html", fig)
    summary, numbers = jacobian_summary(rnn, L, cfg, norm, args.block, upload)
    extra = {} if upload is None else {"model": str(args.model), "model_sha256": upload.model_sha}
    if upload is not None and upload.sequence_sha:
        extra |= {"sequence": str(args.sequence), "sequence_sha256": upload.sequence_sha}
    choice = {"norm": norm.value, "block": args.block, "layer": args.layer, "lag": args.lag}
    write_json(out / "config.json", {**cfg.to_dict(), **choice, **extra})
    files += ["heatmap.html", "config.json"]
    print(summary)
    print(f"Wrote {', '.join(files)} to {out}/")
    return 0


def jacobian_summary(rnn, L: np.ndarray, cfg: ModelConfig, norm, block: str, upload=None) -> tuple[str, dict]:
    """One paragraph: decay rate, memory horizon, end-to-end norm, and Pascanu et al.'s verdict."""
    from bptt_core.flow.spectra import spectrum
    from bptt_core.flow.summary import decay_rate, memory_horizon

    T = cfg.seq_len
    rate = decay_rate(L)
    horizon = memory_horizon(L) if T > 1 else None
    what = "dc_t/dc_s" if Block.of(block) is Block.C else "dh_t/dh_s"
    name = Norm.of(norm).label
    cell = f"{cfg.cell} ({cfg.activation})" if cfg.cell == "rnn" else cfg.cell
    if cfg.num_layers > 1:
        cell += f", {cfg.num_layers} layers"
    if cfg.cell == "lru" and upload is None:
        cell += f", ring {cfg.r_min:g} <= |lambda| <= {cfg.r_max:g}"
    if upload is None and cfg.cell == "lru":
        source = f"the LRU's ring init, {cfg.task} input, seed {cfg.seed}"
    elif upload is None:
        source = f"init {cfg.init} (gain {cfg.gain:g}" + (
            f", rho {cfg.spectral_radius:g}" if cfg.spectral_radius else ""
        )
        source += f"), {cfg.task} input, seed {cfg.seed}"
    else:
        inputs = upload.sequence_name if upload.sequence_sha else f"{cfg.task} input, seed {cfg.seed}"
        source = f"uploaded {upload.model_name}, {inputs}"
    parts = [f"{cell}, H = {cfg.hidden_size}, T = {T}, {source}; {name} norm of {what}."]
    if math.isnan(rate):
        parts.append("Decay rate: undefined (fewer than two lags).")
    else:
        parts.append(f"Decay rate: {rate:+.4g} decades per step (x{10**rate:.4g} per step).")
    if T == 1:
        parts.append("Memory horizon: undefined (no lags).")
    elif horizon is None:
        parts.append(
            f"Memory horizon: beyond T: the norm stays above 1e-3 of its lag-0 value at every lag up to {T - 1}."
        )
    else:
        parts.append(f"Memory horizon: {horizon} steps (first lag where the norm is below 1e-3 of lag 0).")
    if T > 1:
        sym = Block.of(block).value
        parts.append(f"||d{sym}_{T}/d{sym}_1|| = {pow10_text(L[T - 1, 0])}.")
    sp = spectrum(rnn)
    parts.append(f"Spectrum of {sp.matrix}: rho = {sp.rho:.4g}. {sp.verdict(rate=rate, cell=cfg.cell)}")
    return " ".join(parts), {"decay_rate": rate, "memory_horizon": horizon}


def pow10_text(v: float) -> str:
    """10**v as text, exact where 10**v itself would under- or overflow: 1.234e-120."""
    if np.isneginf(v):
        return "0 (exactly)"
    e = math.floor(v)
    return f"{10 ** (v - e):.3f}e{e:+d}"
