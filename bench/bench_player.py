"""What does the training player cost? Measured here, against a baseline measured in the same run.

1. Snapshots: the same training run with ``snapshots=0`` (baseline) and with the default 20 (plus the
   clip events): the ratio is what keeping the copies costs the run.
2. Frames: ``player.frames`` of that run (one gradient-flow matrix, one Lyapunov run and one backward
   pass per snapshot), reported as CPU seconds per frame and as a ratio to one plain
   ``jacobian_log_norms`` of the same model (the baseline every page already pays).
3. Figures: build and serialise each animated figure; the JSON size is what the browser receives once
   (playing then needs no server round trip).

Defaults: the dashboard's model (vanilla tanh, H = 64, T = 50, Gaussian task), SGD lr 0.01, batch 8,
clipping by norm at 1.0 (so the run does not diverge early and has clip events), 200 steps.

Run: python bench/bench_player.py  [--steps 200] [--threads 1] [--rounds 3]
Training times are medians of interleaved rounds after a warm-up.
CPU time (time.process_time) is reported, steadier than wall-clock time on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bptt_core.config import ModelConfig  # noqa: E402
from bptt_core.figures.player import (
    player_dh_figure,
    player_eigenvalue_figure,
    player_heatmap_figure,
    player_lyapunov_figure,
    player_singular_values_figure,
)
from bptt_core.flow.jacobians import jacobian_log_norms  # noqa: E402
from bptt_core.learning import player  # noqa: E402
from bptt_core.learning.training import TrainConfig, train  # noqa: E402
from bptt_core.models.build import build_model, build_task  # noqa: E402


def cpu(fn):
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = ModelConfig()
    base = dict(steps=args.steps, batch_size=8, lr=0.01, clip="norm", clip_threshold=1.0)
    train(m, TrainConfig(**{**base, "steps": 5}))  # warm-up: torch's first calls are slow
    plain, snap = [], []
    for _ in range(args.rounds):  # interleaved, so a busy moment on a shared machine hits both
        plain.append(cpu(lambda: train(m, TrainConfig(**base, snapshots=0)))[1])
        r, t = cpu(lambda: train(m, TrainConfig(**base)))
        snap.append(t)
    t_plain, t_snap = statistics.median(plain), statistics.median(snap)
    reasons = sum((list(s.reasons) for s in r.snapshots), [])
    print(f"training {args.steps} steps: {t_plain:.2f} s without snapshots, {t_snap:.2f} s with "
          f"{len(r.snapshots)} ({reasons.count('even')} even, {reasons.count('clip')} clip events): "
          f"ratio {t_snap / t_plain:.3f}")  # fmt: skip
    rnn, _ = build_model(m)
    x = build_task(m).x[:, 0]
    jacobian_log_norms(rnn, x)
    t_L = statistics.median(cpu(lambda: jacobian_log_norms(rnn, x))[1] for _ in range(5))
    fr, t_frames = cpu(lambda: player.frames(r))
    per = t_frames / len(fr)
    print(f"frames: {len(fr)} in {t_frames:.2f} s, {per * 1e3:.0f} ms per frame = {per / t_L:.1f} x one heatmap "
          f"({t_L * 1e3:.0f} ms)")  # fmt: skip
    paths, t_paths = cpu(lambda: player.eigen_paths([f.eigenvalues for f in fr]))
    print(f"eigenvalue paths: {t_paths * 1e3:.0f} ms")
    for fn, fargs in (
        (player_heatmap_figure, (fr,)),
        (player_dh_figure, (fr,)),
        (player_eigenvalue_figure, (fr, paths)),
        (player_singular_values_figure, (fr,)),
        (player_lyapunov_figure, (fr,)),
    ):
        js, t = cpu(lambda fn=fn, fargs=fargs: fn(*fargs).to_json())
        print(f"{fn.__name__}: {t * 1e3:.0f} ms to build and serialise, {len(js) / 2**20:.2f} MiB JSON")


if __name__ == "__main__":
    main()
