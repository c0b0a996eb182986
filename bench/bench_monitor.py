"""What does GradientFlowMonitor cost a training loop? Measured in one run against the same loop
without it.

The README's example (examples/adding_monitor.py): the adding problem, T = 100, H = 128, batch 32,
torch's nn.RNN (tanh) by default, SGD with momentum, clipping at 1.0. Three arms train copies of the
same model on the same batches, in lockstep: blocks of ``every`` steps, one block per arm in turn
(the order rotating), so that every arm sees the same machine load. Arms: bare (no monitor); the
monitor with its heavy diagnostics in the loop (``background=False``); the monitor with them in its
worker process at the lowest CPU priority (``background=True``, what the default "auto" picks when the
loop leaves a core free, as the example's one torch thread does on a machine with two or more). A monitored block starts with a
logged step and ends by waiting for that step's diagnostics (``monitor.wait()``), so an arm's time
holds all of its own work. Reported: the overhead (monitored / bare - 1) over all blocks and the
median over blocks, and the cost of one logged step in the loop. Starting the worker process (about
a second, once per run) happens before the clock starts and is reported apart.

Run: python bench/bench_monitor.py  [--blocks 8] [--every 50] [--cell rnn] [--threads 1]
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

from adding_monitor import CLIP, THREADS, AddingModel, train_step  # noqa: E402

from bptt_core import GradientFlowMonitor  # noqa: E402

ARMS = ("bare", "in the loop", "background")


class Arm:
    """One copy of the model, its optimizer and (maybe) its monitor, trained block by block."""

    def __init__(self, model, name: str, log_dir: str | None):
        self.model = copy.deepcopy(model)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.step = 0
        self.seconds: list[float] = []
        self.monitor = None
        t0 = time.perf_counter()
        if name != "bare":
            self.monitor = GradientFlowMonitor(self.model, log_dir, every=10**9, clip=CLIP,
                                               background=name == "background")  # fmt: skip
        self.start_seconds = time.perf_counter() - t0

    def block(self, steps: int) -> None:
        if self.monitor is not None:
            self.monitor.steps_seen = 0  # the block's first step is a logged one (every = 10**9 otherwise)
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(self.model, self.opt, self.step, self.monitor)
            self.step += 1
        if self.monitor is not None:
            self.monitor.wait()
        self.seconds.append(time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="GradientFlowMonitor's overhead on the README's example")
    p.add_argument("--blocks", type=int, default=8, help="blocks of `every` steps per arm")
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--cell", default="rnn", choices=["rnn", "lstm", "gru"])
    p.add_argument("--threads", type=int, default=THREADS, help="torch threads of the training loop (the example's)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AddingModel(cell=args.cell)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s) in the loop")  # fmt: skip
    print(f"# adding problem, {args.cell}, T = 100, H = 128, batch 32; {args.blocks} blocks of {args.every} "
          f"steps per arm, each block's first step logged (every = {args.every})")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        arms = {name: Arm(model, name, f"{tmp}/{i}") for i, name in enumerate(ARMS)}
        warm = Arm(model, "bare", None)
        warm.block(5)
        for b in range(args.blocks):
            order = ARMS[b % 3 :] + ARMS[: b % 3]
            for name in order:
                arms[name].block(args.every)
        for a in arms.values():
            if a.monitor is not None:
                a.monitor.close()
    bare = arms["bare"].seconds
    print(f"bare: {sum(bare):.2f} s, {1e3 * sum(bare) / (args.blocks * args.every):.1f} ms per step")
    for name in ARMS[1:]:
        sec = arms[name].seconds
        total = sum(sec) / sum(bare) - 1
        per_block = statistics.median(m / b - 1 for m, b in zip(sec, bare, strict=True))
        print(f"{name}: {sum(sec):.2f} s, overhead {100 * total:+.1f} % over all blocks, "
              f"median block {100 * per_block:+.1f} % (goal <= 5 %)")  # fmt: skip
    logged = (sum(arms["in the loop"].seconds) - sum(bare)) / args.blocks
    print(f"one logged step in the loop: {1e3 * logged:.0f} ms, the time of "
          f"{logged / (sum(bare) / (args.blocks * args.every)):.0f} bare steps; starting the worker process: "
          f"{arms['background'].start_seconds:.2f} s once (before the clock)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
