"""What does GradientFlowMonitor cost a training loop? Measured in one run against the same loop
without it.

The README's example (examples/adding_monitor.py): the adding problem, T = 100, H = 128, batch 32,
torch's nn.RNN (tanh) by default, SGD with momentum, clipping at 1.0. Each round trains the same
number of steps twice from the same weights and batches, once bare and once with the monitor at
``--every`` (its first step logged, then every ``every``-th), interleaved so that both see the same
machine load; reported: seconds of each arm, the overhead ratio (monitored / bare - 1) per round,
the median, and the cost of one logged step (what the heavy diagnostics take). A third arm runs the
monitor with ``background=True`` (the heavy diagnostics in a worker thread on a copy of the weights):
what it saves depends on idle cores (none to spare on a loaded 2-core machine; most of them when the
model trains on a GPU).

Run: python bench/bench_monitor.py  [--steps 150] [--every 50] [--rounds 3] [--cell rnn] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from adding_monitor import AddingModel, train  # noqa: E402

from bptt_core import GradientFlowMonitor  # noqa: E402


def arm(model, steps: int, every: int | None, log_dir: str | None, background: bool = False) -> tuple[float, float]:
    """(seconds for ``steps`` steps, seconds spent inside monitor.step() on logged steps)."""
    model = copy.deepcopy(model)
    if every is None:
        t0 = time.perf_counter()
        train(model, steps)
        return time.perf_counter() - t0, 0.0
    mon = GradientFlowMonitor(model, log_dir, every=every, clip=1.0, background=background)
    inside = [0.0]
    real_step = mon.step

    def timed_step():
        t = time.perf_counter()
        out = real_step()
        if out is not None:
            inside[0] += time.perf_counter() - t
        return out

    mon.step = timed_step
    t0 = time.perf_counter()
    train(model, steps, mon)
    mon.close()  # flushes TensorBoard: part of the cost
    return time.perf_counter() - t0, inside[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="GradientFlowMonitor's overhead on the README's example")
    p.add_argument("--steps", type=int, default=150, help="training steps per arm and round")
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cell", default="rnn", choices=["rnn", "lstm", "gru"])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AddingModel(cell=args.cell)
    logged = len(range(0, args.steps, args.every))
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    print(f"# adding problem, {args.cell}, T = 100, H = 128, batch 32; {args.steps} steps per arm, "
          f"every = {args.every} ({logged} logged steps per monitored arm)")  # fmt: skip
    train(copy.deepcopy(model), 3)  # warm-up
    ratios, bg_ratios, per_log, bare_ms = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            bare, _ = arm(model, args.steps, None, None)
            mon, inside = arm(model, args.steps, args.every, f"{tmp}/run{r}")
            bg, _ = arm(model, args.steps, args.every, f"{tmp}/bg{r}", background=True)
            ratios.append(mon / bare - 1)
            bg_ratios.append(bg / bare - 1)
            per_log.append(inside / logged)
            bare_ms.append(bare / args.steps * 1e3)
            print(f"round {r}: bare {bare:.2f} s ({bare_ms[-1]:.1f} ms/step), monitored {mon:.2f} s "
                  f"({100 * ratios[-1]:+.1f} %), background {bg:.2f} s ({100 * bg_ratios[-1]:+.1f} %), "
                  f"one logged step {per_log[-1] * 1e3:.0f} ms")  # fmt: skip
    step_ms = statistics.median(per_log) * 1e3
    print(f"median overhead at every = {args.every}: {100 * statistics.median(ratios):+.1f} % in the loop, "
          f"{100 * statistics.median(bg_ratios):+.1f} % with background=True (goal <= 5 %); one logged step "
          f"{step_ms:.0f} ms, the time of {step_ms / statistics.median(bare_ms):.0f} bare steps")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
