"""What does multiplying the pages' gradient-flow chain in float64 cost? (bptt_core.analyses.numbers.flow_matrix_of)

The dashboard's heatmap is the matrix the click-to-unroll's float64 running product must end at (within
1e-9 in log10); a float32 chain differs from it by ~1e-7 to 1e-6. This times, for the page's float32
model at each setting, the float32 chain against the float64 one (interleaved, CPU time of one thread,
the least of ``--rounds``), and the largest |difference| between the two matrices.

Run: python bench/bench_flow_dtype.py  [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bptt_core.analyses.numbers import model_and_sequence  # noqa: E402
from bptt_core.config import ModelConfig  # noqa: E402
from bptt_core.flow.jacobians import jacobian_log_norms  # noqa: E402

SETTINGS = [  # the defaults of every cell the unroll reads, and two larger pages
    dict(), dict(cell="lstm"), dict(cell="gru"), dict(hidden_size=64, seq_len=120), dict(norm=2),
    dict(hidden_size=128, seq_len=200),
]  # fmt: skip


def cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'setting':<34} {'float32 ms':>10} {'float64 ms':>10} {'ratio':>6} {'max |dL|':>9}")
    for kw in SETTINGS:
        kw = dict(kw)
        norm = kw.pop("norm", "fro")
        rnn, _, x, _, _ = model_and_sequence(ModelConfig(**kw))
        times = {None: [], torch.float64: []}
        for _ in range(args.rounds):
            for dt in times:
                times[dt].append(cpu_time(lambda dt=dt, r=rnn, x=x, n=norm: jacobian_log_norms(r, x, norm=n, dtype=dt)))
        L32, L64 = (jacobian_log_norms(rnn, x, norm=norm, dtype=dt) for dt in times)
        diff = float(np.nanmax(np.abs(L32 - L64)))
        t32, t64 = min(times[None]) * 1e3, min(times[torch.float64]) * 1e3
        name = ", ".join(f"{k}={v}" for k, v in {**kw, "norm": norm}.items())
        print(f"{name:<34} {t32:>10.1f} {t64:>10.1f} {t64 / t32:>6.2f} {diff:>9.1e}")


if __name__ == "__main__":
    main()
