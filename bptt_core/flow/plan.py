"""Which exact method the gradient-flow engine uses for a size, and how many multiply-adds it takes.

Pure arithmetic (no torch): the cost estimates, the command line's help and the dashboard weigh a
matrix before anything is computed. The methods are described in :mod:`bptt_core.flow.jacobians`.
"""

from __future__ import annotations

import math

from bptt_core.config import Norm

METHODS = ("split", "chain")
LEAF = 8  # the split's ranges of at most this many steps use direct chains: (n - 1)/2 matmuls per step < 2 log2 n
# The split method overtakes the chain once S * T >= 12800 and S^2 * T >= 10^6 (both measured on
# the 2-core CI machine: bench/bench_jacobians.py --crossover); below, its Python steps dominate.
SPLIT_MIN_ST, SPLIT_MIN_SST = 12_800, 1_000_000
# Above this many multiply-adds the gradient-flow matrix takes seconds rather than milliseconds.
FLOW_FLOP_BUDGET = 2e11


def chain_flops(T: int, S: int) -> float:
    """Every product formed: T(T-1)/2 products of S x S matrices, in float32 terms."""
    return 0.5 * T * T * S**3


def split_flops(T: int, S: int) -> float:
    """The Frobenius split: chains and Grams at log2(T / LEAF) levels and the leaves, in float64 (counted twice)."""
    levels = max(1, math.ceil(math.log2(max(T, 1) / LEAF)))
    return 2 * (2 * S**3 * T * levels + 0.5 * (LEAF - 1) * S**3 * T)


def default_method(norm, T: int, S: int) -> str:
    """The faster exact method for this size: the split's S^3 T log T beats the chain's S^3 T^2 once
    the products are big enough to outweigh its extra Python steps; the spectral norm needs the chain."""
    big_enough = S * T >= SPLIT_MIN_ST and S * S * T >= SPLIT_MIN_SST
    return "split" if Norm.of(norm) is Norm.FRO and big_enough and split_flops(T, S) < chain_flops(T, S) else "chain"


def matrix_flops(norm, T: int, S: int) -> float:
    """Multiply-adds of the whole (T, T) matrix with the default method, in float32 terms (a float64
    multiply-add counted as two)."""
    return split_flops(T, S) if default_method(norm, T, S) == "split" else chain_flops(T, S)
