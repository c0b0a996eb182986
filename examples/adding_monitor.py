"""A plain PyTorch training loop on the adding problem (Hochreiter & Schmidhuber 1997), watched by
bptt_core.GradientFlowMonitor: two added lines (marked "monitor") and the diagnostics land in
runs/adding as a run folder the dashboard's Runs page reads, and as TensorBoard event files when the
tensorboard package is installed. It imports the installed package (``pip install .``, or
``pip install -e .`` in the checkout); the core dependencies are enough.

    python examples/adding_monitor.py --steps 500           # T = 100, H = 128, batch 32
    tensorboard --logdir runs                               # scalars grad_norm/*, clip/fired, flow/*, ...
    BPTT_RUNS_DIR=runs bptt-explorer                        # then open the Runs page

The adding problem: each step carries a random value and a 0/1 marker; the target, read at the last
step only, is the sum of the two marked values. The markers sit in the first half, so the model must
carry information across at least T/2 steps: exactly what the gradient-flow matrix shows.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from bptt_core import GradientFlowMonitor
from bptt_core.data.tasks import make_task

T, H, BATCH = 100, 128, 32  # the README's example
CLIP = 1.0
# One torch thread: a step this small gains nothing from more (9.3 ms vs 10.7 ms with two, measured by
# bench/bench_monitor.py), and the cores left free run the monitor's diagnostics beside the loop.
THREADS = 1


class AddingModel(nn.Module):
    def __init__(self, hidden: int = H, cell: str = "rnn"):
        super().__init__()
        kinds = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
        self.rnn = kinds[cell](2, hidden)  # input: (value, marker)
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)  # (T, B, H)
        return out, self.readout(out[-1])  # the prediction from the last step


def train(model: nn.Module, steps: int, monitor: GradientFlowMonitor | None = None, seed: int = 0) -> list[float]:
    """SGD with gradient clipping by global norm; returns the losses."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return [train_step(model, opt, step, monitor, seed) for step in range(steps)]


def train_step(model: nn.Module, opt, step: int, monitor: GradientFlowMonitor | None = None, seed: int = 0) -> float:
    """One step on batch number ``step``: forward, backward, (monitor), clip, update; returns the loss."""
    data = make_task("adding", T, BATCH, seed=seed * 1_000_003 + step)  # x (T, B, 2), y (T, B, 1)
    out, pred = model(data.x)
    if monitor is not None:
        monitor.watch(out)  # monitor (1 of 2): the recurrent output, for ||dL/dh_t||
    loss = ((pred - data.y[-1]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    if monitor is not None:
        monitor.step()  # monitor (2 of 2): after backward, before clipping
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    return loss.item()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--cell", default="rnn", choices=["rnn", "lstm", "gru"])
    p.add_argument("--log-dir", default="runs/adding")
    args = p.parse_args(argv)
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = AddingModel(cell=args.cell)
    with GradientFlowMonitor(model, args.log_dir, every=args.every, clip=CLIP, overwrite=True) as monitor:
        losses = train(model, args.steps, monitor)
    last = monitor.history[-1]
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} after {args.steps} steps")
    print(
        f"at step {last['step']}: ||g|| before clipping {last['grad_norm']:.4g}, decay rate "
        f"{last['decay_rate']:+.4g} log10/step, rho {last['rho']:.4g}; run folder {args.log_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
