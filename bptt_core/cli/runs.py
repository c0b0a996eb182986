"""``bptt runs show|report DIR``: a run folder written by GradientFlowMonitor, summarised or as HTML."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "runs",
        help="a run folder written by GradientFlowMonitor: summary or HTML report",
        description="Read a run folder written by bptt_core.GradientFlowMonitor (its manifest's SHA-256 checked "
        "against every file) and print its summary, or write its self-contained HTML report.",
    )
    sub = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="print a summary of the run")
    show.add_argument("dir", type=Path, metavar="DIR", help="the run folder (the monitor's log_dir)")
    show.set_defaults(func=run_show)
    rep = sub.add_parser("report", help="write the run's HTML report (histories, first and last logged step)")
    rep.add_argument("dir", type=Path, metavar="DIR", help="the run folder (the monitor's log_dir)")
    rep.add_argument("--out", type=Path, metavar="FILE", help="the HTML file to write (default: DIR/report.html)")
    rep.add_argument("--step", type=int, action="append", metavar="N", help="a logged step to show (repeatable)")
    rep.set_defaults(func=run_report)


def run_show(args: argparse.Namespace) -> int:
    from bptt_core.monitor.runs import load_run, run_summary

    print(run_summary(load_run(args.dir)))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from bptt_core.monitor.runs import build_run_report, load_run

    run = load_run(args.dir)
    page = build_run_report(run, steps=args.step)
    out = args.out or args.dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page) / 1e6:.1f} MB)")
    return 0
