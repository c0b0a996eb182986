"""Calibrate the cost model (bptt_core/cost.py) on this machine, and check it.

    python bench/bench_cost.py           # measure, fit, print the constants and estimate / measured
    python bench/bench_cost.py --write   # ... and store them in bptt_core/cost_constants.json

Measures, on a small grid of sizes, with one torch thread (as the server runs): the gradient-flow
matrix by each method, one training step per cell (time, and the floats autograd saves per hidden
unit and time step, counted with saved-tensor hooks), RTRL, the TBPTT comparison and the Lyapunov
spectrum. Times are CPU seconds of this process (see best_of). Fits each formula's constants by non-negative least squares on relative error, then
prints estimate / measured for every point (the model is accepted when all lie within
cost.ACCURACY_FACTOR). Takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bptt_core.analyses import cost as C  # noqa: E402
from bptt_core.analyses.numbers import comparison_of, flow_matrix_of, lyapunov_of
from bptt_core.config import ModelConfig, state_size  # noqa: E402
from bptt_core.learning.training import TrainConfig, batch_at, batch_loss, live_view, train  # noqa: E402
from bptt_core.models.build import build_model, build_task  # noqa: E402


def best_of(fn, n: int = 3) -> float:
    """The least CPU time of n runs. CPU time, not wall-clock: with one torch thread it is the work
    itself, which other processes on a shared machine do not stretch (wall-clock = CPU time on an
    idle core); the minimum is the least disturbed run."""
    times = []
    for _ in range(n):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def fit(rows: list[tuple[list[float], float]]) -> np.ndarray:
    """Non-negative constants c minimising the relative error of features . c against the times."""
    A = np.array([f for f, _ in rows], dtype=float)
    y = np.array([t for _, t in rows], dtype=float)
    c, _ = nnls(A / y[:, None], np.ones_like(y))
    assert c[0] > 0, f"the grid does not determine the leading constant: {rows}"
    return c


FLOW_GRID = [  # (cell, H, T, norm): each method on sizes a page and the CLI use
    ("rnn", 32, 50, "fro"), ("rnn", 64, 100, "fro"), ("rnn", 128, 100, "fro"), ("rnn", 64, 200, "fro"),
    ("lstm", 64, 100, "fro"), ("rnn", 128, 200, "fro"), ("rnn", 256, 200, "fro"), ("gru", 128, 150, "fro"),
    ("rnn", 32, 50, 2), ("rnn", 64, 60, 2), ("rnn", 32, 120, 2), ("lstm", 32, 60, 2), ("rnn", 96, 100, 2),
    ("rnn", 128, 80, 2), ("gru", 64, 150, 2),
]  # fmt: skip
TRAIN_GRID = [
    (cell, H, T, B)
    for cell in ("rnn", "gru", "lstm")
    for H, T, B in ((16, 20, 4), (64, 50, 8), (64, 100, 16), (128, 60, 8))
]
COMPARE_GRID = [("rnn", 32, 50, 10, 10), ("lstm", 32, 60, 5, 10), ("gru", 64, 80, 20, 20)]
LYAP_GRID = [("rnn", 32, 50), ("rnn", 64, 100), ("lstm", 64, 100), ("rnn", 128, 100)]


def measure_flow() -> dict:
    rows: dict[str, list] = {"split": [], "chain_fro": [], "chain_2": []}
    for cell, H, T, norm in FLOW_GRID:
        cfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T)
        S = state_size(cell, H)
        m = C.flow_method(norm, T, S)
        t = best_of(lambda cfg=cfg, norm=norm: flow_matrix_of(cfg, norm), 2)
        rows[m].append(([C.flow_flops(m, T, S), T], t))
    out = {}
    for m, r in rows.items():
        c = fit(r)
        out[f"flow_{m}_s_per_flop"], out[f"flow_{m}_s_per_step"] = float(c[0]), float(c[1])
    return out


def saved_floats_per_unit(cell: str) -> float:
    """Floats autograd saves per hidden unit, time step and sequence in the training loop's graph."""
    cfg = ModelConfig(cell=cell, hidden_size=32, seq_len=40)
    tcfg = TrainConfig(steps=1, batch_size=4)
    rnn, readout = build_model(cfg)
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        batch_loss(live_view(rnn), readout, batch_at(cfg, tcfg, 0))
    return total / (40 * 4 * 32)


def measure_training() -> dict:
    """One fit over all cells: a shared time per multiply-add, a per-cell time per Python time step
    (the loop's overhead, which dominates at small sizes), one fixed cost per step."""
    cells = ("rnn", "gru", "lstm")
    rows = []
    for cell, H, T, B in TRAIN_GRID:
        cfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T)
        tcfg = TrainConfig(steps=4, batch_size=B)
        train(cfg, TrainConfig(steps=1, batch_size=B))  # warm-up
        t = best_of(lambda cfg=cfg, tcfg=tcfg: train(cfg, tcfg), 2) / tcfg.steps
        rows.append(([C.step_flops(cfg, T, B), *(T * (cell == c) for c in cells), 1.0], t))
    c = fit(rows)
    return {
        "train_s_per_flop": {cell: float(c[0]) for cell in cells},
        "train_s_per_step": {cell: float(c[1 + i]) for i, cell in enumerate(cells)},
        "train_s_fixed": float(c[4]),
        "train_saved_floats_per_unit": {cell: saved_floats_per_unit(cell) for cell in cells},
    }


def measure_rtrl() -> dict:
    from bptt_core.learning.truncation import rtrl_gradients

    cfg = ModelConfig(hidden_size=32, seq_len=40)
    rnn, readout = build_model(cfg)
    d = build_task(cfg)
    t = best_of(lambda: rtrl_gradients(rnn, readout, d.x[:, 0], d.y[:, 0]), 2)
    I, O, G = C._sizes(cfg)
    flops = cfg.seq_len * 32 * 32 * (G * 32 * (32 + I + 2))
    return {"rtrl_s_per_flop": t / flops}


def measure_lyapunov() -> dict:
    rows = []
    for cell, H, T in LYAP_GRID:
        cfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T)
        S = state_size(cell, H)
        m = min(S, 64)
        t = best_of(lambda cfg=cfg: lyapunov_of(cfg), 2)
        rows.append(([T * (S * S * m + 2 * S * m * m), T], t))
    c = fit(rows)
    return {"lyapunov_s_per_flop": float(c[0]), "lyapunov_s_per_step": float(c[1])}


def measure_compare() -> dict:
    ratios = []
    for cell, H, T, k1, k2 in COMPARE_GRID:
        cfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T)
        t = best_of(lambda cfg=cfg, k1=k1, k2=k2: comparison_of(cfg, k1, k2), 1)
        ratios.append(t / (C.comparison_cost(cfg, k1, k2).seconds / C.K["compare_factor"]))
    return {"compare_factor": float(np.exp(np.mean(np.log(ratios))))}


def check() -> list[tuple[str, float, float]]:
    """estimate / measured on a grid apart from the fitting grid (as tests/analyses/test_cost.py does, smaller)."""
    out = []
    for cfg, norm in (
        (ModelConfig(hidden_size=96, seq_len=150), "fro"),
        (ModelConfig(cell="gru", hidden_size=48, seq_len=80), 2),
    ):
        t = best_of(lambda cfg=cfg, norm=norm: flow_matrix_of(cfg, norm), 2)
        out.append(
            (f"flow {cfg.cell} H={cfg.hidden_size} T={cfg.seq_len} norm={norm}", C.flow_cost(cfg, norm).seconds, t)
        )
    for cell, H, T, B in (("rnn", 48, 70, 8), ("lstm", 48, 40, 16), ("gru", 96, 30, 4)):
        cfg, tcfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T), TrainConfig(steps=5, batch_size=B)
        train(cfg, TrainConfig(steps=1, batch_size=B))  # warm-up
        t = best_of(lambda cfg=cfg, tcfg=tcfg: train(cfg, tcfg), 2)
        out.append((f"train {cell} H={H} T={T} B={B} x5", C.training_cost(cfg, tcfg).seconds, t))
    cfg = ModelConfig(cell="lstm", hidden_size=32, seq_len=80)
    t = best_of(lambda: comparison_of(cfg, 8, 16), 1)
    out.append(("compare lstm H=32 T=80 (8, 16)", C.comparison_cost(cfg, 8, 16).seconds, t))
    return out


PEAK_SCRIPT = """
import os, sys, threading, torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig, train
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
cfg, tcfg = ModelConfig(cell={cell!r}, hidden_size={H}, seq_len={T}), TrainConfig(steps=1, batch_size={B})
train(cfg, TrainConfig(steps=1, batch_size=1))  # libraries, allocator pools and the model code loaded
before, peak, done = rss(), [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        done.wait(0.0005)
t = threading.Thread(target=sample)
t.start()
train(cfg, tcfg)
done.set()
t.join()
print(max(peak[0], rss()) - before)
"""
MEMORY_GRID = [("rnn", 256, 400, 64), ("gru", 256, 200, 64), ("lstm", 128, 400, 64)]  # (cell, H, T, B)


def peak_growth(cell: str, H: int, T: int, B: int) -> int:
    """Peak RSS growth (bytes) of one training step in a fresh process, after a warm-up step: RSS sampled
    every half millisecond from /proc (ru_maxrss would hide a step that fits under the imports' peak)."""
    import subprocess

    code = PEAK_SCRIPT.format(root=str(Path(__file__).resolve().parents[1]), cell=cell, H=H, T=T, B=B)
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def measure_memory() -> dict:
    """Peak bytes per float of the (T, B, H) hidden states, per cell, from one fresh process each."""
    return {"train_peak_floats_per_unit": {cell: peak_growth(cell, H, T, B) / (4 * T * B * H)
                                           for cell, H, T, B in MEMORY_GRID}}  # fmt: skip


def check_memory() -> list[tuple[str, float, float]]:
    """Estimated against measured peak growth, on sizes apart from MEMORY_GRID."""
    out = []
    for cell, H, T, B in (("rnn", 128, 300, 64), ("gru", 192, 300, 32), ("lstm", 256, 200, 32)):
        grew = peak_growth(cell, H, T, B)
        cfg, tcfg = ModelConfig(cell=cell, hidden_size=H, seq_len=T), TrainConfig(steps=1, batch_size=B)
        est = C.training_cost(cfg, tcfg).bytes - C.K["fixed_bytes"]
        out.append((f"peak memory {cell} H={H} T={T} B={B} (MiB)", est / 2**20, grew / 2**20))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store the constants in bptt_core/cost_constants.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    constants = {}
    for part in (measure_flow, measure_training, measure_memory, measure_rtrl, measure_lyapunov):
        constants.update(part())
        print(f"{part.__name__}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    constants["fixed_bytes"] = C.DEFAULT_CONSTANTS["fixed_bytes"]
    C.K.update(constants)
    constants.update(measure_compare())
    C.K.update(constants)
    print(json.dumps(constants, indent=2))
    worst = 1.0
    print(f"\n{'check':44s} {'estimate':>9s} {'measured':>9s} {'ratio':>6s}")
    for name, est, meas in check():
        r = est / meas
        worst = max(worst, r, 1 / r)
        print(f"{name:44s} {est:9.3f} {meas:9.3f} {r:6.2f}")
    for name, est, meas in check_memory():  # an upper bound is what a budget needs: est >= measured
        r = est / meas
        worst = max(worst, 1 / r) if r < 1 else worst
        print(f"{name:44s} {est:9.1f} {meas:9.1f} {r:6.2f}")
    print(f"worst factor {worst:.2f} (accepted within {C.ACCURACY_FACTOR:g}); {time.perf_counter() - t0:.0f} s in all")
    if args.write:
        meta = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "threads": 1,
                "measured_by": "bench/bench_cost.py", "worst_check_factor": round(worst, 3)}  # fmt: skip
        C.CONSTANTS_FILE.write_text(json.dumps({"meta": meta, "constants": constants}, indent=2) + "\n")
        print(f"wrote {C.CONSTANTS_FILE}")
    return 0 if worst <= C.ACCURACY_FACTOR else 1


if __name__ == "__main__":
    raise SystemExit(main())
