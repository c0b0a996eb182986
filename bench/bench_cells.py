"""The diagonal fast path against the dense engine, for an LRU and a minGRU, in the same run.

The diagonal cells' step Jacobians are diag(a_t) (2 x 2 blocks for the LRU), so the gradient-flow
matrix follows from cumulative sums of log |a_t|: O(T^2 H), and O(T H) for the LRU, whose a_t = lambda
does not change with t (``jacobians.diagonal_log_norms``). The dense engine (``method=None``: the
faster of the Gram split and the product chain for the size) treats the same J_t as full S x S
matrices (S = 2H for the LRU).

At T = 2000, H = 256 the dense engine does not run at all: its (T, S, S) buffers need
24 T S^2 bytes (3.1 GB for the minGRU, 12.6 GB for the LRU), over the engine's 2 GB limit. So the
fast path is timed at T = 2000, H = 256 and the dense engine at the same H on shorter sequences
(``--dense-T``), extrapolated to T = 2000 by its cost model (``bptt_core.flow.plan.matrix_flops``, which is
T^2 for the chain and T log T for the split) from the longest one; the output labels every
extrapolated number. Both paths are also checked to agree (max |difference| of L) at the dense T.

Run: python bench/bench_cells.py  [--T 2000] [--H 256] [--dense-T 20 40] [--repeats 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_jacobians import median_time  # noqa: E402
from bptt_core import LRU, MinGRU, jacobian_log_norms  # noqa: E402
from bptt_core.config import state_size  # noqa: E402
from bptt_core.flow.plan import default_method  # noqa: E402
from bptt_core.flow.plan import matrix_flops as flow_cost  # noqa: E402


def model(cell: str, H: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return LRU(H, H, r_min=0.9, r_max=0.999) if cell == "lru" else MinGRU(H, H)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, default=2000)
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--dense-T", type=int, nargs="+", default=[20, 40])
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    H, T = args.H, args.T
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; H = {H}, Frobenius norm")
    for cell in ("lru", "mingru"):
        m = model(cell, H)
        S = state_size(cell, H)
        x = torch.randn(T, H, generator=torch.Generator().manual_seed(1))  # (T, I = H)
        fast = median_time(lambda m=m, x=x: jacobian_log_norms(m, x), args.repeats)
        print(f"\n{cell} (S = {S}): fast path, T = {T}: {fast:.3f} s (measured)")
        last = None
        for Td in args.dense_T:
            xd, method = x[:Td], default_method("fro", Td, S)
            t_dense = median_time(lambda m=m, xd=xd, method=method: jacobian_log_norms(m, xd, method=method), 1)
            t_fast = median_time(lambda m=m, xd=xd: jacobian_log_norms(m, xd), args.repeats)
            a, b = jacobian_log_norms(m, xd), jacobian_log_norms(m, xd, method="chain")
            diff = float(np.nanmax(np.abs(a - b)))
            print(
                f"  T = {Td:5d}: dense ({method}) {t_dense:8.3f} s, fast {t_fast:.4f} s, "
                f"ratio {t_dense / t_fast:8.1f}x (measured); max |L_fast - L_chain| = {diff:.1e}"
            )
            last = (Td, t_dense, method)
        Td, t_dense, method = last
        scale = flow_cost("fro", T, S) / flow_cost("fro", Td, S)
        est = t_dense * scale
        print(
            f"  T = {T}: dense engine EXTRAPOLATED from T = {Td} by its cost model (x{scale:.0f}, "
            f"{default_method('fro', T, S)} at T = {T}): ~{est:.0f} s, ~{est / fast:.0f}x the fast path; "
            f"it is refused at this size (24 T S^2 = {24 * T * S * S / 1e9:.1f} GB of buffers)"
        )


if __name__ == "__main__":
    main()
