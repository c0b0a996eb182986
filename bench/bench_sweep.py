"""What does a sweep cost per network, against one network computed alone? Both measured here.

1. The phase diagram's grid: 30 x 30 networks (gain x input scale), H = 64, T = 200, vanilla tanh,
   Gaussian init, lambda_1 and gamma sigma_1: the whole sweep (bptt_core.sweeps.run.sweep, chunks on
   local threads), seconds and ms per network.
2. Baseline, same run: networks computed alone the way the pages compute them (Spectrum page's
   lyapunov_exponents with min(S, 64) exponents, spectrum()), on a sample of the grid's points.
3. The same with the gradient-flow measures (decay rate, memory horizon) on a smaller grid.

Reported: ms per network each way and the ratio (alone / in the sweep). Both with the same torch
threads (the sweep computes each chunk single-threaded, several chunks at once).

Run: python bench/bench_sweep.py [--grid 30] [--flow-grid 6] [--alone 20] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bptt_core.config import ModelConfig  # noqa: E402
from bptt_core.resources import single_thread
from bptt_core.sweeps.batched import single_measures
from bptt_core.sweeps.grid import Axis, SweepSpec
from bptt_core.sweeps.run import assemble, compute_chunk, run_local

BASE = ModelConfig(cell="rnn", activation="tanh", hidden_size=64, seq_len=200, init="gaussian")


def per_network_sweep(spec: SweepSpec, workers: int | None) -> float:
    t0 = time.perf_counter()
    table = assemble(spec, list(run_local(spec, workers=workers).values()))
    seconds = time.perf_counter() - t0
    assert len(table) == spec.n_networks
    return seconds


def per_network_alone(spec: SweepSpec, measures, n: int) -> float:
    rows = spec.rows()
    pick = np.linspace(0, len(rows) - 1, n).round().astype(int)
    t0 = time.perf_counter()
    with single_thread():
        for i in pick:
            single_measures(spec.network(**rows[i]), measures)
    return (time.perf_counter() - t0) / n


def report(name: str, spec: SweepSpec, measures, alone_n: int, workers: int | None) -> None:
    compute_chunk(spec, 0)  # warm-up (imports, allocator)
    sweep_s = per_network_sweep(spec, workers)
    alone = per_network_alone(spec, measures, alone_n)
    per = sweep_s / spec.n_networks
    print(f"{name}: {spec.grid_shape} grid = {spec.n_networks} networks in {sweep_s:.2f} s "
          f"({per * 1e3:.2f} ms per network); alone {alone * 1e3:.2f} ms per network "
          f"(mean of {alone_n}); alone / sweep = {alone / per:.1f}x")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=30, help="points per axis of the lambda_1 sweep")
    ap.add_argument("--flow-grid", type=int, default=6, help="points per axis of the gradient-flow sweep")
    ap.add_argument("--alone", type=int, default=20, help="networks computed alone for the baseline")
    ap.add_argument("--workers", type=int, default=0, help="local threads (0: the sweep's default)")
    a = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; H = 64, T = 200, rnn tanh gaussian")
    workers = a.workers or None
    fast = ("lyapunov", "sigma1_gamma")
    spec = SweepSpec(BASE, Axis("gain", 0.5, 3.0, a.grid), Axis("input_scale", 0.0, 2.0, a.grid), measures=fast)
    report("lambda_1 + gamma sigma_1", spec, fast, a.alone, workers)
    flow = ("lyapunov", "decay_rate", "memory_horizon")
    spec = SweepSpec(
        BASE, Axis("gain", 0.5, 3.0, a.flow_grid), Axis("input_scale", 0.0, 2.0, a.flow_grid), measures=flow
    )
    report("lambda_1 + decay rate + horizon", spec, flow, max(3, a.alone // 4), workers)


if __name__ == "__main__":
    main()
