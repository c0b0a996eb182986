"""The gradient-flow matrix L[t, s] = log10 || d h_t / d h_s || and what is read off it.

The vanishing/exploding-gradient picture of Bengio, Simard & Frasconi (1994) and Pascanu,
Mikolov & Bengio (2013, "On the difficulty of training recurrent neural networks"):
d h_t / d h_s = J_t J_{t-1} ... J_{s+1}, with J_t the step Jacobian.

Two exact, batched methods, neither with a Python loop over pairs:
- Frobenius norm ("split", the default): ||A B||_F^2 = <A^T A, B B^T> across midpoint splits of
  the time axis, about 4 S^3 T log2 T FLOPs in float64, every value certified to 1e-10 relative
  or recomputed as an explicit product (:mod:`bptt_core.frobenius`).
- Every product formed ("chain", and the only way for the spectral norm): at each step t, one tall
  matmul extends every product ending at t - 1 by J_t at once, the chain's 2 S^3 T(T-1)/2 FLOPs.
Always in log space: every J_t is divided by its own Frobenius norm (whose log10 is summed
exactly in float64), and a running product whose norm sinks is renormalised with the log of the
scale carried beside it, so 1e-120 and 1e+160 come out right. Because every normalised J has
Frobenius norm 1, products can only shrink, so they never overflow. A product that is exactly zero
(every ReLU unit off) gives -inf, and s > t gives NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import frobenius
from .config import NORMS, check_jacobian_memory
from .jobs import checkpoint
from .models import CellView, cell_view

METHODS = ("split", "chain")
# The split method overtakes the chain once S * T >= 12800 and S^2 * T >= 10^6 (both measured on
# the 2-core CI machine: bench/bench_jacobians.py --crossover); below, its Python steps dominate.
SPLIT_MIN_ST, SPLIT_MIN_SST = 12_800, 1_000_000
RENORM_BELOW = 1e-8  # float32 squares stay normal down to ~1e-19; renormalise well before that
BLOCKS = ("h", "c")  # LSTM: the h-rows/h-columns block of the (h, c) product, or c -> c


def check_sequence(x, input_size: int) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2 or x.shape[1] != input_size:
        raise ValueError(f"x must have shape (T, input_size) = (T, {input_size}), got {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError("x must have at least 1 time step (T >= 1)")
    if not torch.isfinite(x).all():
        raise ValueError("x must contain only finite numbers")
    return x


def check_norm(norm) -> str | int:
    if norm not in NORMS:
        raise ValueError(f"norm must be 'fro' or 2, got {norm!r}")
    return norm


def _block_slice(view: CellView, block: str) -> slice:
    if block not in BLOCKS:
        raise ValueError(f"block must be 'h' or 'c', got {block!r}")
    H = view.hidden_size
    if block == "c":
        if view.kind != "lstm":
            raise ValueError(f"block='c' needs an LSTM (the c -> c block); this model is a {view.kind}")
        return slice(H, 2 * H)
    return slice(0, H)


def trajectory(rnn: nn.Module, x, h0=None) -> tuple[CellView, torch.Tensor, torch.Tensor]:
    """The float64 view of ``rnn``, the checked input x (T, I), and the states (T + 1, S)."""
    view = cell_view(rnn)
    x = check_sequence(x, view.input_size).to(torch.float64)
    return view, x, view.run(x, h0)


def step_jacobians(rnn: nn.Module, x, h0=None) -> torch.Tensor:
    """Exact step Jacobians J_t = d state_t / d state_{t-1}, float64, (T, S, S)."""
    view, x, states = trajectory(rnn, x, h0)
    return view.step_jacobians(x, states[:-1])


def log_norm_products(
    J: torch.Tensor,
    norm="fro",
    block: slice | None = None,
    dtype=torch.float32,
    method: str | None = None,
    overwrite: bool = False,
) -> np.ndarray:
    """L[t, s] = log10 || (J_t ... J_{s+1})[block, block] || for a (T, S, S) chain of step Jacobians.

    ``method``: "split" (Frobenius only: Gram matrices across midpoint splits, float64, certified to
    1e-10 relative, see :mod:`bptt_core.frobenius`) or "chain" (every product formed, the only way
    for the spectral norm); by default whichever is faster for this size. ``dtype`` is the
    precision of the chain's running products (float32: fast; float64: the reference).
    ``overwrite``: normalise a float64 ``J`` in place, sparing a copy (J is scrambled afterwards).
    """
    check_norm(norm)
    T, S, _ = J.shape
    method = method or default_method(norm, T, S)
    if method not in METHODS or (method == "split" and norm != "fro"):
        raise ValueError(f"method must be 'chain', or 'split' with norm='fro'; got method={method!r}, norm={norm!r}")
    block = block or slice(0, S)
    nb = len(range(S)[block])
    out = np.full((T, T), np.nan)
    np.fill_diagonal(out, 0.0 if norm == 2 else 0.5 * math.log10(nb))
    if T == 1:
        return out
    # J_t = n_t * Jhat_t with ||Jhat_t||_F = 1; the log10 n_t are summed exactly, zeros tracked apart.
    n = torch.linalg.matrix_norm(J.to(torch.float64))  # (T,)
    zero = n == 0
    log_n = torch.where(zero, 0.0, torch.log10(torch.where(zero, 1.0, n)))
    cum_log = torch.cat([n.new_zeros(1), torch.cumsum(log_n, 0)]).numpy()  # (T+1,)
    cum_zero = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(zero.long(), 0)]).numpy()
    scale = torch.where(zero, 1.0, n)[:, None, None]  # (T, 1, 1)
    t, s = np.tril_indices(T, -1)  # row t holds s = 0 .. t-1: the order the chain produces them in
    if method == "split":
        Jn = J.div_(scale) if overwrite and J.dtype == torch.float64 else J.to(torch.float64) / scale
        rel = frobenius.log_norms(Jn, block)[t, s]
    else:
        parts, accs = _normalised_chain_norms((J / scale.to(J.dtype)).to(dtype), norm, block, S)
        with np.errstate(divide="ignore"):
            rel = np.log10(parts) + accs
    val = rel + cum_log[t + 1] - cum_log[s + 1]
    has_zero_step = cum_zero[t + 1] - cum_zero[s + 1] > 0
    val[has_zero_step] = -np.inf  # an exactly-zero J in the chain
    lost = np.isneginf(val) & ~has_zero_step
    if method == "chain" and dtype != torch.float64 and lost.any():
        # float32 rounded a step's components below ~1e-45 of its norm to 0 and the product with
        # them; only float64 can say whether it is truly zero (rare: huge gains, shut gates).
        val[lost] = log_norm_products(J, norm, block, torch.float64, method)[t[lost], s[lost]]
    out[t, s] = val
    return out


def flow_cost(norm, T: int, S: int) -> float:
    """Multiply-adds the gradient-flow matrix costs with the default method, in float32 terms (a
    float64 multiply-add counted as two): what a page weighs before it starts the work."""
    return _split_cost(T, S) if default_method(norm, T, S) == "split" else _chain_cost(T, S)


def _chain_cost(T: int, S: int) -> float:
    return 0.5 * T * T * S**3  # T(T-1)/2 products of S x S matrices, float32


def _split_cost(T: int, S: int) -> float:
    levels = max(1, math.ceil(math.log2(max(T, 1) / frobenius.LEAF)))
    return 2 * (2 * S**3 * T * levels + 0.5 * (frobenius.LEAF - 1) * S**3 * T)  # chains + Grams, leaves; float64


def default_method(norm, T: int, S: int) -> str:
    """The faster exact method for this size: the split's S^3 T log T beats the chain's S^3 T^2 once
    the products are big enough to outweigh its extra Python steps."""
    big_enough = S * T >= SPLIT_MIN_ST and S * S * T >= SPLIT_MIN_SST
    return "split" if norm == "fro" and big_enough and _split_cost(T, S) < _chain_cost(T, S) else "chain"


def _normalised_chain_norms(Jn: torch.Tensor, norm, block: slice, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Norms of every product Jhat_t ... Jhat_{s+1}, step by step, with the log10 scale taken out.

    At step t, R stacks the transposed products (Jhat_t ... Jhat_{s+1})^T for s = 0 .. t-1 as a
    (t S, S) matrix, so extending all of them by one step is ONE tall GEMM,
    R_{t+1} = [R_t Jhat_{t+1}^T ; Jhat_{t+1}^T], as efficient as a large square matmul.
    (Transposes do not change the Frobenius or spectral norm, nor which block is which.)
    Returns two flat arrays in row order (t = 1: s = 0; t = 2: s = 0, 1; ...).
    """
    T = Jn.shape[0]
    whole = block == slice(0, S) and norm == "fro"
    JT = Jn.transpose(1, 2).contiguous()  # (T, S, S)
    bufs = (Jn.new_empty((T - 1) * S, S), Jn.new_empty((T - 1) * S, S))
    acc = torch.zeros(T, dtype=torch.float64)  # log10 of the scale taken out of block s
    parts, accs = [], []
    R = bufs[0][:S]
    R.copy_(JT[1])  # t = 1: the single product Jhat_1 (s = 0)
    for t in range(1, T):
        checkpoint((t * t) / (T * T), f"step {t} of {T}")  # in a background job: progress (work grows as t^2), cancel
        blocks = R.view(t, S, S)
        full = _refine_tiny_norms(blocks, torch.linalg.matrix_norm(blocks).to(torch.float64))  # (t,)
        parts.append(full if whole else _block_norms(blocks, norm, block))
        accs.append(acc[:t].clone())
        if t == T - 1:
            break
        if bool(((full > 0) & (full < RENORM_BELOW)).any()):
            scale = torch.where(full > 0, full, 1.0)  # (t,)
            blocks.div_(scale.to(blocks.dtype)[:, None, None])
            acc[:t] += torch.log10(scale)
        nxt = bufs[t % 2][: (t + 1) * S]
        torch.mm(R, JT[t + 1], out=nxt[: t * S])  # every product ending at t, extended to t + 1
        nxt[t * S :].copy_(JT[t + 1])  # the new product of length 1 (s = t)
        R = nxt
    return torch.cat(parts).numpy(), torch.cat(accs).numpy()


def _refine_tiny_norms(P: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """Recompute in float64 the rare norms small enough that float32 squares may have underflowed."""
    if P.dtype == torch.float64 or float(full.min()) >= 1e-15:
        return full
    risky = torch.nonzero(full < 1e-15).flatten()
    if len(risky):  # rare: only products that shrank by ~1e-15 since their last renormalisation
        full = full.clone()
        full[risky] = torch.linalg.matrix_norm(P[risky].to(torch.float64))
    return full


def _block_norms(P: torch.Tensor, norm, block: slice) -> torch.Tensor:
    sub = P[:, block, block]  # (B, n, n)
    if norm == "fro":
        return _refine_tiny_norms(sub, torch.linalg.matrix_norm(sub).to(torch.float64))
    # sigma_1 = sqrt(lambda_max(P^T P)): the largest eigenvalue of the Gram matrix is accurate to
    # working precision, and symmetric eigenvalues cost half of a batched SVD.
    # Divide out each block's largest entry first so its squares cannot underflow in float32.
    scale = sub.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(sub.dtype).tiny)  # (B,)
    u = sub / scale[:, None, None]
    top = torch.linalg.eigvalsh(u.mT @ u)[:, -1]
    return top.clamp_min(0).sqrt().to(torch.float64) * scale.to(torch.float64)


def jacobian_log_norms(
    rnn: nn.Module,
    x,
    h0=None,
    norm="fro",
    block: str = "h",
    dtype: torch.dtype | None = None,
    method: str | None = None,
) -> np.ndarray:
    """The (T, T) float64 gradient-flow matrix L[t, s] = log10 ||d h_t / d h_s|| (NaN for s > t).

    ``rnn``: a single-layer ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` or ``ElmanRNN``; ``x``: (T, I);
    ``norm``: "fro" or 2. For an LSTM the state is (h, c): ``block="h"`` gives d h_t / d h_s
    (the h-rows, h-columns block of the full product, c_s held fixed), ``block="c"`` the c -> c
    block. ``method`` and ``dtype`` as in :func:`log_norm_products`: by default the faster exact
    method for the size, and the chain's products in the model's precision.
    """
    check_norm(norm)
    view = cell_view(rnn)
    sl = _block_slice(view, block)
    if dtype is None:
        dtype = torch.float64 if next(rnn.parameters()).dtype == torch.float64 else torch.float32
    T = torch.as_tensor(x).shape[0] if torch.as_tensor(x).dim() >= 1 else 0
    check_jacobian_memory(view.kind, view.hidden_size, max(T, 1))
    return log_norm_products(step_jacobians(rnn, x, h0), norm, sl, dtype, method, overwrite=True)


# -- what the pages read off L -----------------------------------------------------------------


def lag_view(L: np.ndarray) -> np.ndarray:
    """M[t, k] = L[t, t - k]: the same data indexed by lag k = t - s (NaN for k > t)."""
    T = L.shape[0]
    t, k = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    s = t - k
    M = np.full_like(L, np.nan)
    ok = s >= 0
    M[ok] = L[t[ok], s[ok]]
    return M


def lag_profile(L: np.ndarray) -> np.ndarray:
    """Mean over t of log10 ||d h_t / d h_{t-k}|| for each lag k (geometric mean of the norms)."""
    M = lag_view(L)
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(M), M, np.nan)
    counts = np.isfinite(finite).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.nansum(finite, 0) / counts
    prof[counts == 0] = np.nan
    return prof


def decay_rate(L: np.ndarray, max_lag: int | None = None) -> float:
    """Least-squares slope of the lag profile against lag k >= 1: log10 units per step.

    Negative: vanishing (10^rate per step); positive: exploding. NaN when fewer than two lags.
    """
    prof = lag_profile(L)
    k = np.arange(len(prof))
    use = (k >= 1) & np.isfinite(prof)
    if max_lag is not None:
        use &= k <= max_lag
    if use.sum() < 2:
        return float("nan")
    return float(np.polyfit(k[use], prof[use], 1)[0])


def memory_horizon(L: np.ndarray, threshold: float = 1e-3) -> int | None:
    """The first lag k where the norm drops below ``threshold`` times its lag-0 value, or None."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    prof = lag_profile(L)
    below = np.nonzero(prof - prof[0] < math.log10(threshold))[0]
    return int(below[0]) if len(below) else None


def loss_gradient_norms(rnn: nn.Module, readout: nn.Linear, x, y) -> np.ndarray:
    """||dL/dh_t|| for every t, for the squared error of the readout on the last step only.

    x (T, I), y (T, O) or (O,): the last row is the target. float64 throughout; (T,) float64.
    """
    view, x, _ = trajectory(rnn, x)
    y = torch.as_tensor(y, dtype=torch.float64)
    y_last = y[-1] if y.dim() == 2 else y
    if y_last.shape != (readout.out_features,):
        raise ValueError(f"y must end with a target of size output_size={readout.out_features}, got {tuple(y.shape)}")
    if readout.in_features != view.hidden_size:
        raise ValueError(f"readout in_features must equal hidden_size={view.hidden_size}, got {readout.in_features}")
    W, b = readout.weight.detach().to(torch.float64), readout.bias.detach().to(torch.float64)
    H = view.hidden_size
    # A zero added to every h_t: the gradient w.r.t. it is the total derivative dL/dh_t.
    probes = [torch.zeros(1, H, dtype=torch.float64, requires_grad=True) for _ in range(x.shape[0])]
    state = view.initial_state(None)  # (1, S)
    for t, probe in enumerate(probes):
        state = view.step(x[t : t + 1], state)
        state = torch.cat([state[:, :H] + probe, state[:, H:]], 1)
    loss = ((state[0, :H] @ W.T + b - y_last) ** 2).sum()
    grads = torch.autograd.grad(loss, probes)
    return np.asarray([g.norm().item() for g in grads])
