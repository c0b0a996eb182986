"""The gradient-flow matrix L[t, s] = log10 || d h_t / d h_s || and what is read off it.

The vanishing/exploding-gradient picture of Bengio, Simard & Frasconi (1994) and Pascanu,
Mikolov & Bengio (2013, "On the difficulty of training recurrent neural networks"):
d h_t / d h_s = J_t J_{t-1} ... J_{s+1}, with J_t the step Jacobian.

Two exact, batched methods, neither with a Python loop over pairs:
- Frobenius norm ("split", the default): ||A B||_F^2 = <A^T A, B B^T> across midpoint splits of
  the time axis, about 4 S^3 T log2 T FLOPs in float64, every value certified to 1e-10 relative
  or recomputed as an explicit product (:mod:`bptt_core.flow.frobenius`).
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

from bptt_core.config import Block, Norm, check_int, check_jacobian_memory
from bptt_core.models.arguments import as_real_tensor, check_chain_dtype, check_initial_state, finite_as
from bptt_core.models.recurrent import CellView, StackedView, cell_view
from bptt_core.progress import checkpoint

from . import frobenius
from .plan import METHODS, default_method

RENORM_BELOW = 1e-8  # float32 squares stay normal down to ~1e-19; renormalise well before that


def check_sequence(x, input_size: int) -> torch.Tensor:
    """x (T, input_size) (or (T, 1, input_size)) as a finite float64 tensor."""
    x = as_real_tensor("x", x)
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2 or x.shape[1] != input_size:
        raise ValueError(f"x must have shape (T, input_size) = (T, {input_size}), got {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError("x must have at least 1 time step (T >= 1)")
    return finite_as("x", x, torch.float64)


def check_norm(norm) -> Norm:
    """The norm as a :class:`~bptt_core.config.Norm`, from any spelling (ValueError otherwise)."""
    return Norm.of(norm)


def block_slice(view, block: str, layer: int = -1) -> slice:
    """Rows and columns of the full-state product that L reads: layer ``layer``'s h (or c) block.

    The diagonal cells' whole state is "h" (the LRU's (Re h, Im h), 2H entries)."""
    block = Block.of(block)
    layers = getattr(view, "num_layers", 1)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -layers <= layer < layers:
        raise ValueError(
            f"layer must be a whole number in [{-layers}, {layers - 1}] (0 the bottom, -1 the top), got {layer!r}"
        )
    start = view.layer_slice(int(layer) % layers).start if isinstance(view, StackedView) else 0
    H = view.hidden_size
    if block is Block.C:
        if view.kind != "lstm":
            raise ValueError(f"block='c' needs an LSTM (the c -> c block); this model is a {view.kind}")
        return slice(start + H, start + 2 * H)
    if not isinstance(view, (CellView, StackedView)):  # diagonal cells
        return slice(0, view.state_size)
    return slice(start, start + H)


def trajectory(rnn: nn.Module, x, h0=None) -> tuple[CellView, torch.Tensor, torch.Tensor]:
    """The float64 view of ``rnn``, the checked input x (T, I), and the states (T + 1, S).

    ``batch_first`` modules take the same (T, I): one sequence has no batch axis to put first."""
    view = cell_view(rnn)
    x = check_sequence(x, view.input_size)
    return view, x, view.run(x, check_initial_state(h0))


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
    1e-10 relative, see :mod:`bptt_core.flow.frobenius`) or "chain" (every product formed, the only way
    for the spectral norm); by default whichever is faster for this size. ``dtype`` is the
    precision of the chain's running products (float32: fast; float64: the reference).
    ``overwrite``: normalise a float64 ``J`` in place, sparing a copy (J is scrambled afterwards).
    """
    norm = check_norm(norm)
    dtype = check_chain_dtype(dtype) or torch.float32
    T, S, _ = J.shape
    method = method or default_method(norm, T, S)
    if method not in METHODS or (method == "split" and norm is not Norm.FRO):
        raise ValueError(f"method must be 'chain', or 'split' with norm='fro'; got method={method!r}, norm={norm!r}")
    block = block or slice(0, S)
    nb = len(range(S)[block])
    out = np.full((T, T), np.nan)
    np.fill_diagonal(out, 0.0 if norm is Norm.SPECTRAL else 0.5 * math.log10(nb))
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


def _normalised_chain_norms(Jn: torch.Tensor, norm, block: slice, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Norms of every product Jhat_t ... Jhat_{s+1}, step by step, with the log10 scale taken out.

    At step t, R stacks the transposed products (Jhat_t ... Jhat_{s+1})^T for s = 0 .. t-1 as a
    (t S, S) matrix, so extending all of them by one step is ONE tall GEMM,
    R_{t+1} = [R_t Jhat_{t+1}^T ; Jhat_{t+1}^T], as efficient as a large square matmul.
    (Transposes do not change the Frobenius or spectral norm, nor which block is which.)
    Returns two flat arrays in row order (t = 1: s = 0; t = 2: s = 0, 1; ...).
    """
    norm = Norm.of(norm)
    T = Jn.shape[0]
    whole = block == slice(0, S) and norm is Norm.FRO
    JT = Jn.transpose(1, 2).contiguous()  # (T, S, S)
    bufs = (Jn.new_empty((T - 1) * S, S), Jn.new_empty((T - 1) * S, S))
    acc = torch.zeros(T, dtype=torch.float64)  # log10 of the scale taken out of block s
    parts, accs = [], []
    R = bufs[0][:S]
    R.copy_(JT[1])  # t = 1: the single product Jhat_1 (s = 0)
    for t in range(1, T):
        checkpoint((t * t) / (T * T), f"step {t} of {T}")  # in a background job: progress (work grows as t^2), cancel
        blocks = R.view(t, S, S)
        full = refine_tiny_norms(blocks, torch.linalg.matrix_norm(blocks).to(torch.float64))  # (t,)
        parts.append(full if whole else block_norms(blocks, norm, block))
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


def refine_tiny_norms(P: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """Recompute in float64 the rare norms small enough that float32 squares may have underflowed."""
    if P.dtype == torch.float64 or float(full.min()) >= 1e-15:
        return full
    risky = torch.nonzero(full < 1e-15).flatten()
    if len(risky):  # rare: only products that shrank by ~1e-15 since their last renormalisation
        full = full.clone()
        full[risky] = torch.linalg.matrix_norm(P[risky].to(torch.float64))
    return full


def block_norms(P: torch.Tensor, norm, block: slice) -> torch.Tensor:
    """The norm of the ``block`` rows and columns of each matrix of (B, S, S), in float64 (B,)."""
    norm = Norm.of(norm)
    sub = P[:, block, block]  # (B, n, n)
    if norm is Norm.FRO:
        return refine_tiny_norms(sub, torch.linalg.matrix_norm(sub).to(torch.float64))
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
    layer: int = -1,
    block: str = "h",
    dtype: torch.dtype | None = None,
    method: str | None = None,
) -> np.ndarray:
    """The (T, T) float64 gradient-flow matrix L[t, s] = log10 ||d h_t / d h_s|| (NaN for s > t).

    ``rnn``: ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (stacked and batch_first too), ``ElmanRNN``, or a
    diagonal cell (``LRU``, ``MinGRU``, ``MinLSTM``, ``SelectiveSSM``); ``x``: (T, I) whatever
    ``batch_first`` says; ``norm``: "fro" or 2. The state at step t is every layer's state; L reads
    the block of layer ``layer`` (0 the bottom, -1 the top) of the full-state product, every other
    part of the state at s held fixed. For an LSTM the layer's state is (h, c): ``block="h"`` gives
    d h_t / d h_s, ``block="c"`` the c -> c block. The LRU's block is its whole real state
    (Re h, Im h). Diagonal cells take the fast path (:func:`diagonal_log_norms`) unless
    ``method`` asks for "chain" or "split"; ``method`` and ``dtype`` otherwise as in
    :func:`log_norm_products`: by default the faster exact method for the size, and the chain's
    products in the model's precision.
    """
    norm = check_norm(norm)
    dtype = check_chain_dtype(dtype)
    view = cell_view(rnn)
    sl = block_slice(view, block, layer)
    if dtype is None:
        dtype = torch.float64 if next(rnn.parameters()).dtype == torch.float64 else torch.float32
    T = check_sequence(x, view.input_size).shape[0]  # checks x first: None, text, object arrays are refused
    if method in (None, "diagonal") and hasattr(view, "diagonal"):
        check_jacobian_memory(view.kind, view.hidden_size, max(T, 1))
        x = check_sequence(x, view.input_size).to(torch.float64)
        view.initial_state(h0)  # checks h0: the diagonal Jacobians do not depend on it
        return diagonal_log_norms(view.diagonal(x), norm, complex_pairs=view.state_size == 2 * view.hidden_size)
    if method == "diagonal":
        raise ValueError(
            f"method='diagonal' needs a diagonal cell (lru, mingru, minlstm, ssm); this model is a {view.kind}"
        )
    check_jacobian_memory(view.kind, view.hidden_size, max(T, 1), getattr(view, "num_layers", 1))
    return log_norm_products(step_jacobians(rnn, x, h0), norm, sl, dtype, method, overwrite=True)


def diagonal_log_norms(a: torch.Tensor, norm="fro", complex_pairs: bool = False, tile: int = 128) -> np.ndarray:
    """L[t, s] for diagonal step Jacobians J_t = diag(a_t), in O(T^2 H) without forming S x S products.

    The product J_t ... J_{s+1} is diag(prod_k a_k): one number per unit. Row s of a (T, H) array
    holds |prod_{k=s+1}^{t} a_k| for the current t, and each step multiplies every row by |a_t| at
    once (one elementwise pass, then one norm pass): the spectral norm is the row's largest entry,
    the Frobenius norm its 2-norm. A row whose norm leaves [1e-100, 1e100] is divided by it and the
    log10 of the scale carried beside it (so 1e-120 and 1e+160 come out right, as in the dense
    engine). ``complex_pairs``: a_t complex, each unit a 2 x 2 rotation-and-scaling block of the
    real state (Re h, Im h), with Frobenius norm sqrt(2) |prod a|. When a_t does not change with t
    (the LRU), L depends on t - s only and costs O(T H). An exactly zero a (a shut unit) stays zero.
    Frobenius norms of sequences longer than ``tile`` take :func:`_tiled_frobenius`: the same
    numbers with the far pairs of each tile of ``tile`` steps as one matrix product.
    """
    norm = check_norm(norm)
    T, H = a.shape
    mult = 2 if complex_pairs else 1
    diag = 0.0 if norm is Norm.SPECTRAL else 0.5 * math.log10(mult * H)
    mag = a.abs().to(torch.float64)  # (T, H)
    if T > 1 and bool((mag[1:] == mag[1]).all()):  # constant diagonal: a function of the lag only
        return _by_lag(_constant_diagonal_lags(mag[1], T, norm, mult), diag, T)
    if norm is Norm.FRO and T > tile:
        return _tiled_frobenius(mag, mult, tile)
    return _recurrence(mag, norm, mult)


def _recurrence(mag: torch.Tensor, norm, mult: int) -> np.ndarray:
    """Every pair by the elementwise recurrence over rows (see :func:`diagonal_log_norms`)."""
    norm = Norm.of(norm)
    T, H = mag.shape
    diag = 0.0 if norm is Norm.SPECTRAL else 0.5 * math.log10(mult * H)
    out = np.full((T, T), np.nan)
    np.fill_diagonal(out, diag)
    rows = torch.empty(max(T - 1, 1), H, dtype=torch.float64)  # row s: |prod_{k=s+1}^{t} a_k| / 10^scale[s]
    scale = np.zeros(T)  # log10 taken out of each row
    half_log_mult = 0.5 * math.log10(mult)
    for t in range(1, T):
        live = rows[: t - 1]
        live *= mag[t]  # every product ending at t - 1, extended to t
        rows[t - 1] = mag[t]  # the product of length 1 (s = t - 1)
        n = _row_norms(rows[:t], norm)  # (t,)
        with np.errstate(divide="ignore"):
            out[t, :t] = np.log10(n.numpy()) + scale[:t] + (0.0 if norm is Norm.SPECTRAL else half_log_mult)
        drift = (n > 0) & ((n < 1e-100) | (n > 1e100))
        if bool(drift.any()):
            idx = torch.nonzero(drift).flatten()
            rows[idx] /= n[idx, None]
            scale[idx.numpy()] += np.log10(n[idx].numpy())
    return out


def _tiled_frobenius(mag: torch.Tensor, mult: int, tile: int) -> np.ndarray:
    """Frobenius L[t, s] of diagonal products with BLAS doing the O(T^2 H) work.

    For the tile of steps t in [b, e) and s < b - 1, P(t, s) = P(t, b-1) * P(b-1, s) unit by unit,
    so sum_j P_j(t, s)^2 = sum_j A_tj^2 R_sj^2: one (n, H) x (H, b - 1) product for the whole tile.
    Both factors are kept as natural logs (sums of log |a_k| only, never differences, so a shut unit
    is -inf, not NaN) and exponentiated with each row's maximum taken out; every squared sum is
    positive, so it is exact to rounding unless it fell below 1e-280, where the squares of the small
    terms may have underflowed: those pairs are recomputed as a log-sum-exp of the logs. The pairs
    inside a tile (s >= b - 1) take the row recurrence. Units smaller than 1e-308 of a row's
    largest stay out, as in the dense engine.
    """
    T, H = mag.shape
    out = np.full((T, T), np.nan)
    np.fill_diagonal(out, 0.5 * math.log10(mult * H))
    half = 0.5 * math.log10(mult)
    logm = torch.where(mag == 0, -math.inf, torch.log(torch.where(mag == 0, 1.0, mag)))  # (T, H)
    log_R = torch.empty(T, H, dtype=torch.float64)  # row s < b - 1: log P(b - 1, s), unit by unit
    ln10 = math.log(10)
    for b in range(1, T, tile):
        e = min(T, b + tile)
        block = _recurrence(mag[b - 1 : e], "fro", mult)  # pairs with b - 1 <= s < t < e
        out[b:e, b - 1 : e] = np.where(np.isnan(block[1:]), out[b:e, b - 1 : e], block[1:])
        A = torch.cumsum(logm[b:e], 0)  # (n, H): log P(t, b - 1) for t = b .. e - 1
        far = b - 1  # s = 0 .. b - 2
        if far:
            out[b:e, :far] = _far_pairs(A, log_R[:far]) / ln10 + half
        rc = torch.flip(torch.cumsum(torch.flip(logm[b:e], [0]), 0), [0])  # rc[i] = log P(e - 1, b - 1 + i)
        log_R[:far] += A[-1]  # P(e - 1, s) = P(e - 1, b - 1) P(b - 1, s)
        log_R[far : e - 1] = rc
    return out


def _far_pairs(A: torch.Tensor, log_R: torch.Tensor) -> np.ndarray:
    """ln sqrt(sum_j exp(2 (A_tj + log_R_sj))) for every t (rows of A) and s (rows of log_R)."""
    m_t = A.amax(1, keepdim=True)  # (n, 1)
    M_s = log_R.amax(1, keepdim=True)  # (f, 1)
    m_t, M_s = (torch.where(torch.isfinite(v), v, 0.0) for v in (m_t, M_s))  # an all-zero row: 0
    dot = torch.exp(2 * (A - m_t)) @ torch.exp(2 * (log_R - M_s)).T  # (n, f), every term in [0, 1]
    with np.errstate(divide="ignore"):
        val = 0.5 * np.log(dot.numpy()) + m_t.numpy() + M_s.numpy().T
    t, s = np.nonzero(dot.numpy() < 1e-280)  # rare: squares may have underflowed; exactly 0 lands here too
    for c in range(0, len(t), 4096):
        tt, ss = torch.from_numpy(t[c : c + 4096]), torch.from_numpy(s[c : c + 4096])
        val[t[c : c + 4096], s[c : c + 4096]] = (0.5 * torch.logsumexp(2 * (A[tt] + log_R[ss]), 1)).numpy()
    return val


def _row_norms(rows: torch.Tensor, norm) -> torch.Tensor:
    """Spectral (largest entry) or Frobenius (2-norm) of each diagonal row; a 2-norm whose squares
    may have under- or overflowed is recomputed with the row scaled by its largest entry."""
    norm = Norm.of(norm)
    if norm is Norm.SPECTRAL:
        return rows.amax(1)
    n = torch.linalg.vector_norm(rows, dim=1)  # (t,)
    risky = torch.nonzero((n < 1e-140) | (n > 1e140)).flatten()
    if len(risky):
        peak = rows[risky].amax(1)
        safe = torch.where(peak > 0, peak, 1.0)
        n[risky] = torch.linalg.vector_norm(rows[risky] / safe[:, None], dim=1) * peak
    return n


def _constant_diagonal_lags(m: torch.Tensor, T: int, norm, mult: int) -> np.ndarray:
    """log10 ||diag(m)^k|| for k = 1 .. T-1 (m >= 0, (H,)), in log space: (T - 1,)."""
    norm = Norm.of(norm)
    k = torch.arange(1, T, dtype=torch.float64)[:, None]  # (T - 1, 1)
    zero = m == 0
    logm = torch.where(zero, -math.inf, torch.log(torch.where(zero, 1.0, m)))  # (H,)
    v = k * logm  # (T - 1, H); a zero unit is -inf at every lag
    top = v.amax(-1) if norm is Norm.SPECTRAL else 0.5 * (torch.logsumexp(2 * v, -1) + math.log(mult))
    return (top / math.log(10)).numpy()


def _by_lag(per_lag: np.ndarray, diag: float, T: int) -> np.ndarray:
    """(T, T) with L[t, s] = per_lag[t - s - 1] for s < t, ``diag`` on the diagonal, NaN above."""
    lag = np.subtract.outer(np.arange(T), np.arange(T))  # t - s
    values = np.concatenate([[diag], per_lag, [np.nan]])  # index 0: lag 0; the last: s > t
    return values[np.where(lag >= 0, lag, T)]


def layer_reach(rnn: nn.Module, x, h0=None, norm="fro", t: int | None = None) -> np.ndarray:
    """The depth x time picture of a stack: R[i, s] = log10 ||d h^top_t / d h^i_s|| for every layer i
    and step s <= t (NaN after t), every other part of the full state at s held fixed.

    How much of a change at (layer i, step s) reaches (top layer, step t); t defaults to the last
    step. A single-layer model gives one row, its column t of L. (num_layers, T) float64.
    """
    norm = check_norm(norm)
    view = cell_view(rnn)
    if not isinstance(view, (CellView, StackedView)):
        raise ValueError(f"layer_reach needs an nn.RNN / LSTM / GRU or ElmanRNN; this model is a {view.kind}")
    J = step_jacobians(rnn, x, h0)  # (T, S, S)
    T, S, _ = J.shape
    t = T - 1 if t is None else check_int("t", t, 0, T - 1)
    layers = getattr(view, "num_layers", 1)
    top = block_slice(view, "h", -1)
    out = np.full((layers, T), np.nan)
    P = torch.eye(S, dtype=torch.float64)[top]  # rows of d h^top_t / d state_s, s running down from t
    log_scale = 0.0
    for s in range(t, -1, -1):
        for i in range(layers):
            cols = block_slice(view, "h", i)
            n = torch.linalg.matrix_norm(P[:, cols], ord=norm.value).item()  # ord "fro" or 2
            out[i, s] = (math.log10(n) if n > 0 else -math.inf) + log_scale
        if s == 0:
            break
        P = P @ J[s]  # now d h^top_t / d state_{s-1}
        scale = torch.linalg.matrix_norm(P).item()
        if scale > 0:
            P /= scale
            log_scale += math.log10(scale)
    return out


# -- what the pages read off L -----------------------------------------------------------------


def loss_gradient_norms(rnn: nn.Module, readout: nn.Linear, x, y) -> np.ndarray:
    """||dL/dh_t|| for every t, for the squared error of the readout on the last step only.

    x (T, I), y (T, O) or (O,): the last row is the target. float64 throughout; (T,) float64.
    A stack: h_t is the top layer's h (what the readout reads). The diagonal cells: h_t is the
    whole real state (the LRU's (Re h, Im h)), and the readout reads the cell's output y_t.
    """
    view, x, _ = trajectory(rnn, x)
    y = torch.as_tensor(y, dtype=torch.float64)
    y_last = y[-1] if y.dim() == 2 else y
    if y_last.shape != (readout.out_features,):
        raise ValueError(f"y must end with a target of size output_size={readout.out_features}, got {tuple(y.shape)}")
    if readout.in_features != view.hidden_size:
        raise ValueError(f"readout in_features must equal hidden_size={view.hidden_size}, got {readout.in_features}")
    W, b = readout.weight.detach().to(torch.float64), readout.bias.detach().to(torch.float64)
    diagonal = hasattr(view, "output")
    top = slice(0, view.state_size) if diagonal else block_slice(view, "h", -1)
    n = top.stop - top.start
    # A zero added to every h_t: the gradient w.r.t. it is the total derivative dL/dh_t.
    probes = [torch.zeros(1, n, dtype=torch.float64, requires_grad=True) for _ in range(x.shape[0])]
    state = view.initial_state(None)  # (1, S)
    for t, probe in enumerate(probes):
        state = view.step(x[t : t + 1], state)
        state = torch.cat([state[:, : top.start], state[:, top] + probe, state[:, top.stop :]], 1)
    seen = view.output(x[-1:], state)[0] if diagonal else state[0, top]
    loss = ((seen @ W.T + b - y_last) ** 2).sum()
    grads = torch.autograd.grad(loss, probes)
    return np.asarray([g.norm().item() for g in grads])
