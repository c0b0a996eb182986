"""How long do the training pages take? Measured here, with baselines measured in the same run.

1. Three clipping twins (unclipped, norm, value) of 300 steps at the default settings: the adding
   task (loss on the last step), T = 50, H = 64, vanilla tanh RNN, SGD lr 0.01, batch 16, clip
   threshold 1.0. Baselines: the same 3 x 300 steps as a plain loop (same model and batches, no
   histories, no dL/dh_t), and with torch's fused nn.RNN. Reported: seconds, ms per step,
   and the ratio to each baseline (the price of recording everything), median over interleaved rounds.
2. The variants comparison (truncation.compare_variants: full BPTT, TBPTT(10, 10), TBPTT(20, 20),
   RTRL) on one sequence of the same model, repeats = 3.

Run: python bench/bench_training.py  [--steps 300] [--repeats 3] [--threads 1] [--quick]

Threads: torch's intra-op parallelism buys nothing on (16, 64) matrices and, on a shared 2-core
machine, its spinning threads fight other processes; one thread (the default here) gives steadier
figures. Pass --threads 2 to measure torch's default.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bptt_core.config import ModelConfig  # noqa: E402
from bptt_core.learning.training import TrainConfig, batches, twin_runs  # noqa: E402
from bptt_core.models.build import build_model  # noqa: E402

MODEL = ModelConfig(task="adding")  # defaults otherwise: rnn, tanh, H = 64, T = 50, orthogonal
TRAIN = TrainConfig()  # defaults: 300 steps, sgd, lr 0.01, batch 16, threshold 1.0


def plain_loop(rnn: nn.Module, readout: nn.Linear, data, lr: float) -> float:
    """Seconds for the bare training loop over ``data``: forward, batch-mean loss, backward, SGD."""
    opt = torch.optim.SGD([*rnn.parameters(), *readout.parameters()], lr=lr)
    t0 = time.perf_counter()
    for d in data:
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(d.x)  # (T, B, H)
        loss = ((readout(out[d.loss_mask]) - d.y[d.loss_mask]) ** 2).sum() / d.x.shape[1]
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def fused_model(rnn: nn.Module) -> nn.RNN:
    """torch's own nn.RNN with the same weights (the fastest vanilla RNN torch offers on CPU)."""
    fused = nn.RNN(rnn.input_size, rnn.hidden_size)
    fused.load_state_dict(rnn.state_dict())
    return fused


def bench_twins(steps: int, repeats: int) -> dict:
    cfg = TrainConfig(steps=steps)
    data = batches(MODEL, cfg)

    def twins() -> float:
        t0 = time.perf_counter()
        twin_runs(MODEL, cfg)
        return time.perf_counter() - t0

    def baseline(fused: bool) -> float:
        total = 0.0
        for _ in range(3):  # three runs, like the twins
            rnn, readout = build_model(MODEL)
            total += plain_loop(fused_model(rnn) if fused else rnn, readout, data, cfg.lr)
        return total

    twins()  # warm-up
    # Interleaved rounds, so a change in the machine's load hits all three alike; medians per column
    # and the median of the per-round ratios.
    rounds = [(twins(), baseline(False), baseline(True)) for _ in range(repeats)]
    t_twins, t_plain, t_fused = (statistics.median(c) for c in zip(*rounds, strict=True))
    return dict(
        steps=steps,
        twins=t_twins,
        plain=t_plain,
        fused=t_fused,
        over_plain=statistics.median(a / b for a, b, _ in rounds),
        over_fused=statistics.median(a / c for a, _, c in rounds),
    )


def bench_variants(repeats: int) -> dict | None:
    try:
        from bptt_core.learning.truncation import compare_variants
    except ImportError:
        return None
    rnn, readout = build_model(MODEL)
    d = batches(MODEL, TrainConfig(steps=1, batch_size=1))[0]
    x, y = d.x[:, 0], d.y[:, 0]  # (T, I), (T, O)
    compare_variants(rnn, readout, x, y, loss_mask=d.loss_mask, repeats=1)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        table = compare_variants(rnn, readout, x, y, ks=(10, 20), loss_mask=d.loss_mask, repeats=3)
        times.append(time.perf_counter() - t0)
    return dict(seconds=statistics.median(times), table=table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=TRAIN.steps, help="training steps per twin (default 300)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions; the median is reported")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="30 steps, 1 repeat (a smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, repeats = (30, 1) if args.quick else (args.steps, args.repeats)

    cmd = (
        "python bench/bench_training.py"
        + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads != 1 else "")
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, load average {load:.1f}")  # fmt: skip
    print(f"settings: task adding, cell rnn (tanh), T = {MODEL.seq_len}, H = {MODEL.hidden_size}, "
          f"SGD lr {TRAIN.lr}, batch {TRAIN.batch_size}, clip threshold {TRAIN.clip_threshold}; median of {repeats}")  # fmt: skip

    tw = bench_twins(steps, repeats)
    n = 3 * tw["steps"]
    va = bench_variants(repeats)

    lines = [
        f"Training benchmark ({cmd}; {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load:.1f} at start)",
        f"- three clipping twins x {tw['steps']} steps (adding, T = {MODEL.seq_len}, H = {MODEL.hidden_size}, "
        f"batch {TRAIN.batch_size}): {tw['twins']:.2f} s, {1e3 * tw['twins'] / n:.1f} ms per step",
        f"- the same steps as a bare loop (same model, no histories, no dL/dh_t): {tw['plain']:.2f} s; "
        f"recording costs x{tw['over_plain']:.2f}",
        f"- the same steps with torch's fused nn.RNN: {tw['fused']:.2f} s; the twins take x{tw['over_fused']:.2f}",
    ]
    if va is not None:
        t = va["table"]
        parts = ", ".join(
            f"{r.variant} {1e3 * r.time_total_s:.1f} ms" for r in t.itertuples() if r.time_total_s == r.time_total_s
        )
        lines.append(
            f"- variants comparison (full BPTT, TBPTT(10, 10), TBPTT(20, 20), RTRL; one sequence, repeats 3): "
            f"{va['seconds']:.2f} s in all; per gradient: {parts}"
        )
    else:
        lines.append("- variants comparison: bptt_core.learning.truncation.compare_variants is not available")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
