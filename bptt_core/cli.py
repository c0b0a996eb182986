"""The command line: ``python -m bptt_core <subcommand> ...``, the dashboard's diagnostics as files.

    python -m bptt_core jacobian --cell rnn --activation tanh --hidden-size 64 --seq-len 50 \\
        --init orthogonal --gain 1 --norm fro --out results/

Each subcommand is one ``add_<name>_parser(subparsers)`` function that declares its options and
sets ``func``; the model settings come from :func:`add_model_arguments` (one option per
:class:`~bptt_core.config.ModelConfig` field, same defaults) and :func:`config_from_args`. A bad
setting prints the library's ValueError message (which names the setting and its range) to
stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

from .config import ACTIVATIONS, CELLS, INITS, TASKS, ModelConfig, check_jacobian_memory

EXIT_BAD_SETTING = 2  # argparse's own status for a bad command line
EXIT_IO_ERROR = 1
FLAT_RATE = 1e-4  # decades per step: under 1% change over 40 steps reads as "flat"

# -- shared pieces for every subcommand ---------------------------------------------------------

_MODEL_HELP = {
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "activation": f"vanilla RNN activation: {', '.join(ACTIVATIONS)}",
    "hidden_size": "hidden units H",
    "input_size": "input width (0 = what the task needs)",
    "seq_len": "time steps T",
    "init": f"initialisation of W_hh (and W_ih): {', '.join(INITS)}",
    "gain": "gain multiplying the initialisation (> 0)",
    "spectral_radius": "rescale W_hh to this spectral radius (0 = leave as initialised)",
    "seed": "seed of the weights and the data",
    "task": f"input sequence: {', '.join(TASKS)}",
    "batch_size": "sequences generated (the Jacobian uses the first)",
}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--kebab-case`` option per ModelConfig field, with ModelConfig's defaults.

    No argparse ``choices``: ModelConfig validates, so the message is the library's own.
    """
    group = parser.add_argument_group("model settings (as in the dashboard)")
    for f in fields(ModelConfig):
        kind = {"int": int, "float": float}.get(f.type, str)
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=kind,
            default=f.default,
            metavar=kind.__name__.upper(),
            help=f"{_MODEL_HELP.get(f.name, f.name)} (default: {f.default})",
        )


def config_from_args(args: argparse.Namespace) -> ModelConfig:
    """The validated ModelConfig from parsed arguments (raises ValueError naming a bad setting)."""
    return ModelConfig(**{f.name: getattr(args, f.name) for f in fields(ModelConfig)})


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    """--model / --nonlinearity / --sequence: analyse a trained model instead of the settings model."""
    g = parser.add_argument_group("your own model (instead of the settings model)")
    g.add_argument(
        "--model", type=Path, metavar="PATH", help="a single-layer RNN/LSTM/GRU state_dict: .pt, .pth or .safetensors"
    )
    g.add_argument(
        "--nonlinearity",
        default=None,
        help="vanilla RNN only: tanh, relu, sigmoid or linear (default: the file's, else tanh)",
    )
    g.add_argument(
        "--sequence",
        type=Path,
        metavar="PATH",
        help="input sequence (T, input_size) as .csv or .npy (default: the task)",
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror or e}") from None


def upload_from_args(args: argparse.Namespace):
    """The checked :class:`bptt_core.sources.Upload` for --model (None without it); ValueError with
    the loader's message for a file that cannot be used. Nothing in the file is ever run."""
    from .sources import make_upload

    if getattr(args, "model", None) is None:
        if getattr(args, "sequence", None) is not None or getattr(args, "nonlinearity", None) is not None:
            raise ValueError("--sequence and --nonlinearity need --model (a trained model file)")
        return None
    seq = args.sequence
    up, loaded, notes = make_upload(
        _read(args.model, "--model"), args.model.name, args.nonlinearity,
        _read(seq, "--sequence") if seq is not None else None, seq.name if seq is not None else "",
    )  # fmt: skip
    print(f"model: {args.model.name}: {loaded.summary()}")
    for n in notes:
        print(f"  note: {n}")
    return up


def add_budget_argument(parser: argparse.ArgumentParser) -> None:
    from .cost import CEILING, REQUEST_BUDGET

    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"allow up to this many estimated seconds (default {REQUEST_BUDGET.seconds:g}; at most the ceiling, "
        f"{CEILING.seconds:g}). Work estimated over budget is refused with exit 2 before it starts.",
    )


def check_budget(cost, args: argparse.Namespace) -> None:
    """Refuse (OverBudget, a ValueError: exit 2) work whose estimate exceeds the request's budget."""
    from .cost import budget

    cost.check(budget(seconds=getattr(args, "budget", None)))


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the files (created)")


def add_norm_arguments(parser: argparse.ArgumentParser) -> None:
    """--norm and --block, as jacobian_log_norms takes them."""
    parser.add_argument("--norm", default="fro", help="matrix norm: fro (Frobenius) or 2 (spectral) (default: fro)")
    parser.add_argument("--block", default="h", help="LSTM only: h (dh_t/dh_s) or c (dc_t/dc_s) (default: h)")


def parse_norm(value: str):
    """'fro' or '2' from the command line, as jacobian_log_norms takes it."""
    if value == "fro":
        return "fro"
    if value in ("2", "spectral"):
        return 2
    raise ValueError(f"norm must be 'fro' or 2, got {value!r}")


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_matrix_csv(path: Path, M: np.ndarray, row_labels, col_labels, corner: str) -> None:
    """A labelled matrix; NaN cells empty, exact zeros of the norm (-inf) as -inf, floats round-trip."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([corner, *col_labels])
        for label, row in zip(row_labels, M, strict=True):
            w.writerow([label, *("" if math.isnan(v) else repr(float(v)) for v in row)])


def write_figure_html(path: Path, fig) -> None:
    """Self-contained HTML (plotly.js inlined), with the shared export config."""
    import plotly.io as pio

    from .figures import PLOTLY_CONFIG

    pio.write_html(fig, str(path), include_plotlyjs=True, full_html=True, config=PLOTLY_CONFIG)


# -- jacobian -------------------------------------------------------------------------------------------


def add_jacobian_parser(subparsers) -> None:
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
    p.set_defaults(func=run_jacobian)


def run_jacobian(args: argparse.Namespace) -> int:
    from .build import build_model, build_task
    from .figures import gradient_flow_heatmap
    from .jacobians import BLOCKS, jacobian_log_norms, lag_view

    cfg = config_from_args(args)
    norm = parse_norm(args.norm)
    upload = upload_from_args(args)
    if upload is not None:
        from .sources import effective_config

        cfg = effective_config(cfg, upload)
    if args.block not in BLOCKS:
        raise ValueError(f"block must be 'h' or 'c', got {args.block!r}")
    if args.block == "c" and cfg.cell != "lstm":
        raise ValueError(f"block='c' needs an LSTM (the c -> c block); cell is {cfg.cell!r}")
    check_jacobian_memory(cfg.cell, cfg.hidden_size, cfg.seq_len)  # before building anything
    from .cost import flow_cost

    check_budget(flow_cost(cfg, norm), args)
    if upload is None:
        rnn, _ = build_model(cfg)
        x = build_task(cfg).x[:, 0]  # (T, I): the first sequence of the batch
    else:
        from .sources import resolve

        rnn, _, x, _, _ = resolve(cfg, upload)
    L = jacobian_log_norms(rnn, x, norm=norm, block=args.block)  # (T, T)

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
    write_json(out / "config.json", {**cfg.to_dict(), "norm": norm, "block": args.block, "lag": args.lag, **extra})
    files += ["heatmap.html", "config.json"]
    print(summary)
    print(f"Wrote {', '.join(files)} to {out}/")
    return 0


def jacobian_summary(rnn, L: np.ndarray, cfg: ModelConfig, norm, block: str, upload=None) -> tuple[str, dict]:
    """One paragraph: decay rate, memory horizon, end-to-end norm, and Pascanu et al.'s verdict."""
    from .jacobians import decay_rate, memory_horizon
    from .spectra import spectrum

    T = cfg.seq_len
    rate = decay_rate(L)
    horizon = memory_horizon(L) if T > 1 else None
    what = "dc_t/dc_s" if block == "c" else "dh_t/dh_s"
    name = "Frobenius" if norm == "fro" else "spectral"
    cell = f"{cfg.cell} ({cfg.activation})" if cfg.cell == "rnn" else cfg.cell
    if upload is None:
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
        trend = "flat" if abs(rate) < FLAT_RATE else "vanishing" if rate < 0 else "exploding"
        parts.append(f"Decay rate: {rate:+.4g} decades per step (x{10**rate:.4g} per step, {trend}).")
    if T == 1:
        parts.append("Memory horizon: undefined (no lags).")
    elif horizon is None:
        parts.append(
            f"Memory horizon: beyond T: the norm stays above 1e-3 of its lag-0 value at every lag up to {T - 1}."
        )
    else:
        parts.append(f"Memory horizon: {horizon} steps (first lag where the norm is below 1e-3 of lag 0).")
    if T > 1:
        sym = "c" if block == "c" else "h"
        parts.append(f"||d{sym}_{T}/d{sym}_1|| = {pow10_text(L[T - 1, 0])}.")
    sp = spectrum(rnn)
    parts.append(f"Spectrum of {sp.matrix}: rho = {sp.rho:.4g}; {sp.verdict()}")
    return " ".join(parts), {"decay_rate": rate, "memory_horizon": horizon}


def pow10_text(v: float) -> str:
    """10**v as text, exact where 10**v itself would under- or overflow: 1.234e-120."""
    if np.isneginf(v):
        return "0 (exactly)"
    e = math.floor(v)
    return f"{10 ** (v - e):.3f}e{e:+d}"


# -- report ---------------------------------------------------------------------------------------------


def add_report_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML report with every figure for the settings",
        description="Build the model from the settings and write one self-contained HTML page (plotly.js "
        "inlined once) with the dashboard's figures: gradient flow, norm against lag, ||dL/dh_t||, "
        "eigenvalues, singular values, Lyapunov spectrum; optionally truncated BPTT and clipping twins.",
    )
    add_model_arguments(p)
    add_upload_arguments(p)
    add_norm_arguments(p)
    p.add_argument("--tbptt", nargs=2, type=int, metavar=("K1", "K2"), help="add TBPTT(K1, K2): mask and comparison")
    p.add_argument("--train-steps", type=int, default=0, help="add the clipping twin runs with this many steps")
    p.add_argument("--clip-threshold", type=float, default=1.0, help="clipping threshold of the twins (default: 1)")
    p.add_argument("--lecture", action="store_true", help="projector-sized type")
    add_budget_argument(p)
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="the HTML file to write")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from .report import build_report

    cfg = config_from_args(args)
    upload = upload_from_args(args)
    train_cfg = None
    if args.train_steps:
        from .training import TrainConfig

        train_cfg = TrainConfig(steps=args.train_steps, clip_threshold=args.clip_threshold)
    from .cost import report_cost

    ecfg = cfg
    if upload is not None:
        from .sources import effective_config

        ecfg = effective_config(cfg, upload)
    k1k2 = tuple(min(int(k), ecfg.seq_len) for k in args.tbptt) if args.tbptt else None
    check_budget(report_cost(ecfg, parse_norm(args.norm), k1k2, train_cfg), args)
    page = build_report(
        cfg,
        norm=parse_norm(args.norm),
        block=args.block,
        k1k2=tuple(args.tbptt) if args.tbptt else None,
        train_cfg=train_cfg,
        lecture=args.lecture,
        upload=upload,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({len(page) / 1e6:.1f} MB)")
    return 0


# -- entry point ----------------------------------------------------------------------------------------

SUBCOMMANDS = [add_jacobian_parser, add_report_parser]  # a new subcommand: write add_<name>_parser and list it here


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bptt_core", description="BPTT Explorer diagnostics from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on an unknown option
    try:
        return args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except OSError as e:
        print(f"error: cannot write the output: {e}", file=sys.stderr)
        return EXIT_IO_ERROR
