"""What every command shares: the model settings (one option per :class:`~bptt_core.config.ModelConfig`
field, same defaults), the user's own model file, the norm, the output folder, the cost estimate said
before heavy work, and the writers of CSV, JSON and HTML files. Nothing here imports torch."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

from bptt_core.config import ACTIVATIONS, CELLS, INITS, TASKS, ModelConfig, Norm

EXIT_BAD_SETTING = 2  # argparse's own status for a bad command line


EXIT_IO_ERROR = 1
EXIT_MISSING_PACKAGE = 3  # an optional dependency of the command is not installed (the message says which)


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
    """The checked :class:`bptt_core.analyses.sources.Upload` for --model (None without it); ValueError with
    the loader's message for a file that cannot be used. Nothing in the file is ever run."""
    from bptt_core.analyses.sources import make_upload

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
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="refuse (exit 2) work estimated to take longer than this many seconds (default: no limit; the "
        "estimate is printed before the work starts either way)",
    )


def announce_cost(cost, args: argparse.Namespace) -> None:
    """Say what the work will cost before it starts (on stderr); refuse it (a ValueError: exit 2) only
    when it cannot fit in this machine's memory or exceeds the user's own ``--budget``."""
    from bptt_core.resources import check_fits
    from bptt_core.units import format_seconds

    print(f"estimate: {cost.describe()}", file=sys.stderr)
    check_fits(cost.bytes, cost.what)
    budget = getattr(args, "budget", None)
    if budget is not None:
        if not (math.isfinite(budget) and budget > 0):
            raise ValueError(f"--budget must be a positive number of seconds, got {budget}")
        if cost.seconds > budget:
            raise ValueError(
                f"{cost.what} is estimated at {format_seconds(cost.seconds)}, over --budget {format_seconds(budget)}: "
                f"lower {' or '.join(cost.lower[:2]) or 'the sizes'}, or raise --budget"
            )


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
    return Norm.of(value)


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

    from bptt_core.figures.style import PLOTLY_CONFIG

    pio.write_html(fig, str(path), include_plotlyjs=True, full_html=True, config=PLOTLY_CONFIG)


def write_figure_png(path: Path, fig) -> str | None:
    """PNG through Plotly's kaleido (which drives a headless Chrome/Chromium); None, or why it failed."""
    import plotly.io as pio

    try:
        pio.write_image(fig, str(path), width=1000, height=750, scale=2)
    except Exception as e:  # kaleido missing, or no browser it can start: said, not fatal
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (PNG export needs kaleido and Chromium)"
    return None
