"""How fast is the exact gradient-flow engine? Ratios against baselines measured in the same run.

1. Roofline, T = H = 256, Frobenius: the exact product chain costs 2 H^3 T(T-1)/2 FLOPs; divided
   by the throughput of a 1024 x 1024 float32 matmul measured here, that is the fastest that forming
   every product could be. Reported: engine time / roofline time (goal <= 1.2). The engine's
   default there, the Gram split, forms far fewer products, so it can beat that roofline.
2. Against per-row autograd, T = 100, H = 64: one backward pass per unit of every h_t (what a
   PyTorch user writes first), both timed here. Reported: speed-up (goal >= 300).
3. The spectral norm's cost at T = 100, H = 64 beside the Frobenius one.
4. With --crossover: split against chain over a grid of sizes, the data behind
   ``bptt_core.flow.plan.default_method``.

Run: python bench/bench_jacobians.py  [--repeats 5] [--quick] [--crossover]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bptt_core import ModelConfig, build_model, build_task, jacobian_log_norms  # noqa: E402
from bptt_core.flow.jacobians import log_norm_products, step_jacobians  # noqa: E402
from bptt_core.flow.plan import default_method  # noqa: E402

CROSSOVER_GRID = [(S, T) for S in (16, 32, 64, 128, 256) for T in (20, 50, 100, 200, 400, 1000) if S * S * T <= 2**24]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_throughput(n: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of one n x n float32 matmul on this machine, now (median of repeats)."""
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=c)  # warm-up
    return 2 * n**3 / median_time(lambda: torch.mm(a, b, out=c), repeats)


def model_and_input(hidden: int, steps: int):
    cfg = ModelConfig(hidden_size=hidden, seq_len=steps, init="orthogonal", activation="tanh")
    rnn, _ = build_model(cfg)
    return rnn, build_task(cfg).x[:, 0]  # (T, I)


def per_row_autograd(rnn, x) -> torch.Tensor:
    """The first thing a PyTorch user writes: for every h_t and unit i, backprop h_t[i] to all h_s."""
    T, H = x.shape[0], rnn.hidden_size
    h = torch.zeros(1, 1, H, requires_grad=True)
    hs = []
    for t in range(T):
        _, h = rnn(x[t : t + 1, None], h)  # h_t, (1, 1, H): the tensor the next step consumes
        hs.append(h)
    norms = torch.full((T, T), float("nan"))
    for t in range(T):
        rows = [
            torch.autograd.grad(hs[t][0, 0, i], hs[: t + 1], retain_graph=True, allow_unused=True) for i in range(H)
        ]
        for s in range(t + 1):
            block = torch.stack([r[s].reshape(H) for r in rows])  # (H, H)
            norms[t, s] = torch.linalg.matrix_norm(block)
    return torch.log10(norms)


def bench_roofline(repeats: int, size: int = 256) -> dict:
    """Engine time over roofline time, one ratio per round, with the matmul throughput measured right
    before and right after each engine run: this VM's throughput drifts by tens of percent between
    seconds, so only a ratio of neighbouring measurements means anything. Reported: the median ratio."""
    rnn, x = model_and_input(size, size)
    jacobian_log_norms(rnn, x)  # warm-up
    flops = 2 * size**3 * size * (size - 1) / 2
    ratios, engine, thr = [], [], []
    for _ in range(repeats):
        before = matmul_throughput()
        t = median_time(lambda: jacobian_log_norms(rnn, x), 1)
        after = matmul_throughput()
        ratios.append(t / (flops / ((before + after) / 2)))
        engine.append(t)
        thr += [before, after]
    roof = flops / statistics.median(thr)
    return dict(
        size=size,
        method=default_method("fro", size, size),
        engine_s=statistics.median(engine),
        roofline_s=roof,
        ratio=statistics.median(ratios),
        ratios=ratios,
        gflops=statistics.median(thr) / 1e9,
    )


def bench_autograd(repeats: int, hidden: int = 64, steps: int = 100) -> dict:
    rnn, x = model_and_input(hidden, steps)
    fro = median_time(lambda: jacobian_log_norms(rnn, x), repeats)
    spec = median_time(lambda: jacobian_log_norms(rnn, x, norm=2), repeats)
    t0 = time.perf_counter()
    ref = per_row_autograd(rnn, x)
    slow = time.perf_counter() - t0
    L = jacobian_log_norms(rnn, x)
    low = torch.tril(torch.ones(steps, steps, dtype=torch.bool))
    err = float((torch.as_tensor(L)[low] - ref.double()[low]).abs().max())
    return dict(
        hidden=hidden, steps=steps, engine_s=fro, spectral_s=spec, autograd_s=slow, speedup=slow / fro, max_abs_err=err
    )


def bench_crossover(repeats: int) -> list[dict]:
    """Split and chain on the same step Jacobians for each size, each the median of ``repeats``."""
    rows = []
    for S, T in CROSSOVER_GRID:
        rnn, x = model_and_input(S, T)
        J = step_jacobians(rnn, x)
        times = {}
        for method in ("split", "chain"):
            log_norm_products(J, method=method)  # warm-up
            times[method] = median_time(lambda m=method, J=J: log_norm_products(J, method=m), repeats)
        rows.append(dict(S=S, T=T, default=default_method("fro", T, S), **times))
        print(
            f"S={S:4d} T={T:5d}  split {times['split'] * 1e3:8.1f} ms  chain {times['chain'] * 1e3:8.1f} ms  "
            f"split/chain {times['split'] / times['chain']:5.2f}  default: {rows[-1]['default']}",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller roofline case (T = H = 128) for a smoke run")
    ap.add_argument("--crossover", action="store_true", help="only the split-vs-chain grid")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.crossover:
        bench_crossover(max(3, args.repeats))
        return
    r = bench_roofline(args.repeats, 128 if args.quick else 256)
    a = bench_autograd(max(3, args.repeats))
    print(
        f"| roofline, T = H = {r['size']}, Frobenius | engine ({r['method']}) {r['engine_s']:.2f} s | roofline {r['roofline_s']:.2f} s "
        f"(1024² matmul at {r['gflops']:.0f} GFLOP/s) | **{r['ratio']:.2f}× roofline** (median of per-round ratios "
        f"{', '.join(f'{q:.2f}' for q in sorted(r['ratios']))}; goal ≤ 1.2×) |"
    )
    print(
        f"| per-row autograd, T = {a['steps']}, H = {a['hidden']} | engine {a['engine_s'] * 1e3:.1f} ms | autograd "
        f"{a['autograd_s']:.1f} s | **{a['speedup']:.0f}× faster** (goal ≥ 300×); max |Δlog10| = {a['max_abs_err']:.1e} |"
    )
    print(
        f"| spectral norm, T = {a['steps']}, H = {a['hidden']} | {a['spectral_s'] * 1e3:.1f} ms | Frobenius "
        f"{a['engine_s'] * 1e3:.1f} ms | {a['spectral_s'] / a['engine_s']:.1f}× the Frobenius cost |"
    )


if __name__ == "__main__":
    main()
