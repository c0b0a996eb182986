"""``bptt report``: the self-contained HTML report of every page for these settings (the dashboard's report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import (
    add_budget_argument,
    add_model_arguments,
    add_norm_arguments,
    add_upload_arguments,
    announce_cost,
    config_from_args,
    parse_norm,
    upload_from_args,
)


def add_parser(subparsers) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported when the command runs: building the parser (bptt --help) must not load torch.
    from bptt_core.learning.training import TrainConfig
    from bptt_core.report.html import build_report, report_cost_of

    cfg = config_from_args(args)
    upload = upload_from_args(args)
    train_cfg = TrainConfig(steps=args.train_steps, clip_threshold=args.clip_threshold) if args.train_steps else None
    sections = dict(
        norm=parse_norm(args.norm), k1k2=tuple(args.tbptt) if args.tbptt else None, train_cfg=train_cfg, upload=upload
    )
    announce_cost(report_cost_of(cfg, **sections), args)
    page = build_report(cfg, block=args.block, lecture=args.lecture, **sections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({len(page) / 1e6:.1f} MB)")
    return 0
