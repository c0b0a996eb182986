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

from .config import ACTIVATIONS, CELLS, INITS, TASKS, ModelConfig, check_jacobian_memory, norm_of

EXIT_BAD_SETTING = 2  # argparse's own status for a bad command line
EXIT_IO_ERROR = 1

# -- shared pieces for every subcommand ---------------------------------------------------------

_MODEL_HELP = {
    "cell": f"recurrent cell: {', '.join(CELLS)}",
    "activation": f"vanilla RNN activation: {', '.join(ACTIVATIONS)}",
    "hidden_size": "hidden units H",
    "input_size": "input width (0 = what the task needs)",
    "seq_len": "time steps T",
    "init": f"initialisation of W_hh (and W_ih; the input weights of mingru/minlstm/ssm; lru: its ring): "
    f"{', '.join(INITS)}",
    "gain": "gain multiplying the initialisation (> 0)",
    "spectral_radius": "rescale W_hh to this spectral radius (0 = leave as initialised)",
    "seed": "seed of the weights and the data",
    "task": f"input sequence: {', '.join(TASKS)}",
    "batch_size": "sequences generated (the Jacobian uses the first)",
    "num_layers": "stacked layers (rnn, lstm, gru; a stacked rnn takes tanh or relu)",
    "r_min": "LRU only: smallest |lambda| of the ring initialisation",
    "r_max": "LRU only: largest |lambda| of the ring initialisation (<= 1)",
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
    parser.add_argument(
        "--layer", default=-1, type=int, help="stacked models: whose block, 0 the bottom, -1 the top (default: -1)"
    )


def parse_norm(value: str):
    """'fro' or '2' from the command line, as jacobian_log_norms takes it."""
    return norm_of(value)


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
    check_jacobian_memory(cfg.cell, cfg.hidden_size, cfg.seq_len, cfg.num_layers)  # before building anything
    from .cost import flow_cost

    check_budget(flow_cost(cfg, norm), args)
    if upload is None:
        rnn, _ = build_model(cfg)
        x = build_task(cfg).x[:, 0]  # (T, I): the first sequence of the batch
    else:
        from .sources import resolve

        rnn, _, x, _, _ = resolve(cfg, upload)
    L = jacobian_log_norms(rnn, x, norm=norm, layer=args.layer, block=args.block)  # (T, T)

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
    choice = {"norm": norm, "block": args.block, "layer": args.layer, "lag": args.lag}
    write_json(out / "config.json", {**cfg.to_dict(), **choice, **extra})
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
        sym = "c" if block == "c" else "h"
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
    from .cost import budget, report_cost

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
        budget=budget(seconds=args.budget),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({len(page) / 1e6:.1f} MB)")
    return 0


# -- sweep ----------------------------------------------------------------------------------------------


def add_sweep_parser(subparsers) -> None:
    from .sweep import AXES, MAX_SWEEP_NETWORKS, MEASURES, TRAIN_TASKS

    p = subparsers.add_parser(
        "sweep",
        help="a phase diagram: a grid of networks, each measured (sweep.csv, sweep.parquet, phase.html, phase.png)",
        description="Vary one or two settings over a grid (every other setting fixed), build every network of "
        "the grid for each seed, measure each exactly as the dashboard's pages do, and write one row per grid "
        "point and seed to DIR/sweep.csv and DIR/sweep.parquet (columns: the axis settings, seed, one per "
        "measure), with the phase diagram (phase.html, phase.png) and the settings (sweep.json). "
        f"At most {MAX_SWEEP_NETWORKS} networks (grid points x seeds) per sweep. Chunks are written to "
        "DIR/chunks/ as they finish; a rerun of an interrupted sweep computes only the missing ones.",
    )
    add_model_arguments(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--x", required=True, metavar="SETTING:START:STOP:COUNT",
                   help=f"first axis, inclusive and evenly spaced; SETTING one of {', '.join(AXES)}")  # fmt: skip
    g.add_argument("--y", metavar="SETTING:START:STOP:COUNT", help="optional second axis")
    g.add_argument("--seeds", type=int, default=1, help="seeds per grid point: --seed, --seed + 1, ... (default: 1)")
    g.add_argument("--measure", default="lyapunov", help=f"comma-separated measures: {', '.join(MEASURES)} "
                   "(default: lyapunov; lyapunov is lambda_1 in log10 per step)")  # fmt: skip
    g.add_argument("--input-scale", type=float, default=1.0, help="multiplies the input sequence (default: 1)")
    g.add_argument("--bias-scale", type=float, default=0.0, help="bias ~ N(0, scale^2) added (default: 0)")
    g.add_argument("--h0-scale", type=float, default=0.0, help="initial state ~ N(0, scale^2) (default: 0, h_0 = 0)")
    g.add_argument("--burn-in", type=int, default=0, help="lambda_1: steps not averaged (default: 0)")
    g.add_argument("--train-task", default="adding", help=f"trainability task: {', '.join(TRAIN_TASKS)}")
    g.add_argument("--train-steps", type=int, default=30, help="trainability: SGD steps (default: 30)")
    g.add_argument("--chunk-size", type=int, default=32, help="networks per chunk (default: 32)")
    g.add_argument("--workers", type=int, default=0, help="local threads (default: up to 4)")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the chunks on this Dask distributed cluster")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_out_argument(p)
    p.set_defaults(func=run_sweep)


def progress_bar(stream=None, width: int = 30):
    """A one-line progress bar on stderr: [#####.....] done/total chunks."""
    stream = stream or sys.stderr

    def show(done: int, total: int) -> None:
        filled = round(width * done / total) if total else width
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def spec_from_args(args: argparse.Namespace):
    from .sweep import Axis, SweepSpec

    measures = tuple(m.strip() for m in str(args.measure).split(",") if m.strip())
    return SweepSpec(
        base=config_from_args(args),
        x=Axis.parse(args.x, "--x"),
        y=Axis.parse(args.y, "--y") if args.y else None,
        seeds=args.seeds,
        measures=measures,
        input_scale=args.input_scale,
        bias_scale=args.bias_scale,
        h0_scale=args.h0_scale,
        burn_in=args.burn_in,
        train_task=args.train_task,
        train_steps=args.train_steps,
        chunk_size=args.chunk_size,
    )


def run_sweep(args: argparse.Namespace) -> int:
    from .sweep_run import SweepIncomplete, check_scheduler_address, finish, run_to_folder

    spec = spec_from_args(args)
    if args.scheduler:
        check_scheduler_address(args.scheduler)
    if args.workers < 0:
        raise ValueError(f"workers must be >= 0, got {args.workers}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    where = f"on {args.scheduler}" if args.scheduler else "here"
    print(f"sweep: {spec.grid_shape} grid x {spec.seeds} seed(s) = {spec.n_networks} networks, "
          f"{len(spec.chunks())} chunks, {where}", file=sys.stderr)  # fmt: skip
    try:
        table, folder = run_to_folder(
            spec, out, args.scheduler, None if args.no_progress else progress_bar(), args.workers or None
        )
    except SweepIncomplete as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return EXIT_IO_ERROR
    table.to_csv(out / "sweep.csv", index=False)
    table.to_parquet(out / "sweep.parquet", index=False)
    write_json(out / "sweep.json", spec.to_dict())
    files = ["sweep.csv", "sweep.parquet", "sweep.json"]
    finish(out, folder)
    fig, notes = sweep_figure(spec, table)
    write_figure_html(out / "phase.html", fig)
    files.append("phase.html")
    png = write_figure_png(out / "phase.png", fig)
    if png is None:
        files.append("phase.png")
    else:
        print(f"warning: phase.png not written: {png}", file=sys.stderr)
    for line in notes:
        print(line)
    print(f"Wrote {', '.join(files)} to {out}/")
    return 0


def sweep_figure(spec, table):
    """The phase diagram of the first measure, the lambda_1 = 0 contour and the mean-field line; notes."""
    from .sweep import phase_figure, theory_distance, theory_line

    line = theory_line(spec)
    fig = phase_figure(table, [a.name for a in spec.axes], spec.measures[0], seeds=spec.seeds, line=line)
    notes = []
    if line.frame is None:
        notes.append(f"Mean-field line: none ({line.reason}).")
    else:
        d = theory_distance(table, line)
        if d is not None and d["rows"]:
            notes.append(
                f"Measured lambda_1 = 0 boundary vs mean field chi_1 = 1: mean |difference| {d['mean']:.3g}, "
                f"largest {d['max']:.3g} in {line.gain_axis} over {d['rows']} row(s)."
            )
        elif d is not None:
            notes.append("Measured boundary: lambda_1 does not cross 0 inside the grid, so no distance to the theory.")
    return fig, notes


def write_figure_png(path: Path, fig) -> str | None:
    """PNG through Plotly's kaleido (which drives a headless Chrome/Chromium); None, or why it failed."""
    import plotly.io as pio

    try:
        pio.write_image(fig, str(path), width=1000, height=750, scale=2)
    except Exception as e:  # kaleido missing, or no browser it can start: said, not fatal
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (PNG export needs kaleido and Chromium)"
    return None


# -- runs -----------------------------------------------------------------------------------------------


def add_runs_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "runs",
        help="a run folder written by GradientFlowMonitor: summary or HTML report",
        description="Read a run folder written by bptt_core.GradientFlowMonitor (its manifest's SHA-256 checked "
        "against every file) and print its summary, or write its self-contained HTML report.",
    )
    sub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="print a summary of the run")
    show.add_argument("dir", type=Path, metavar="DIR", help="the run folder (the monitor's log_dir)")
    show.set_defaults(func=run_runs_show)
    rep = sub.add_parser("report", help="write the run's HTML report (histories, first and last logged step)")
    rep.add_argument("dir", type=Path, metavar="DIR", help="the run folder (the monitor's log_dir)")
    rep.add_argument("--out", type=Path, metavar="FILE", help="the HTML file to write (default: DIR/report.html)")
    rep.add_argument("--step", type=int, action="append", metavar="N", help="a logged step to show (repeatable)")
    rep.set_defaults(func=run_runs_report)


def run_runs_show(args: argparse.Namespace) -> int:
    from .runs import load_run, run_summary

    print(run_summary(load_run(args.dir)))
    return 0


def run_runs_report(args: argparse.Namespace) -> int:
    from .runs import build_run_report, load_run

    run = load_run(args.dir)
    page = build_run_report(run, steps=args.step)
    out = args.out or args.dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page) / 1e6:.1f} MB)")
    return 0


# -- entry point ----------------------------------------------------------------------------------------

SUBCOMMANDS = [
    add_jacobian_parser,
    add_report_parser,
    add_sweep_parser,
    add_runs_parser,
]  # a new subcommand: write add_<name>_parser and list it here


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
