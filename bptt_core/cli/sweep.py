"""``bptt sweep``: a phase diagram, a grid of networks each measured as the pages measure it (sweep.csv,
sweep.parquet, phase.html, phase.png), here or on a Dask cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import (
    EXIT_IO_ERROR,
    add_model_arguments,
    add_out_argument,
    config_from_args,
    write_figure_html,
    write_figure_png,
    write_json,
)


def add_parser(subparsers) -> None:
    from bptt_core.sweeps.grid import AXES, MAX_SWEEP_NETWORKS, MEASURES, TRAIN_TASKS

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
    p.set_defaults(func=run)


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
    from bptt_core.sweeps.grid import Axis, SweepSpec

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


def run(args: argparse.Namespace) -> int:
    from bptt_core.sweeps.distributed import SweepIncomplete, check_scheduler_address, finish, run_to_folder

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
    from bptt_core.sweeps.boundary import theory_distance, theory_line
    from bptt_core.sweeps.phase import phase_figure

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
