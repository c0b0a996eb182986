"""Frobenius norms of every product Jhat_t ... Jhat_{s+1} without forming most of the products.

For any split point m with s <= m <= t the product factors as P(t, s) = A B with A = P(t, m) and
B = P(m, s), and ||A B||_F^2 = tr(B^T A^T A B) = <A^T A, B B^T>_F: the inner product of two S x S
Gram matrices, S^2 multiply-adds instead of an S^3 product. Splitting every range of steps at its
midpoint (divide and conquer over the time axis) gives each step one chain product and one Gram
matrix per level, so the whole (T, T) matrix costs about 4 S^3 T log2(T) FLOPs instead of the
S^3 T^2 of forming all T(T-1)/2 products (Bengio, Simard & Frasconi 1994 and Pascanu, Mikolov &
Bengio 2013 study exactly these norms; the factorisation is the standard trace identity).

Exact to a certified tolerance: everything runs in float64, every chain product is renormalised
(its log10 scale carried apart, so 1e-120 and 1e+160 come out right), and every Gram inner
product comes with a rigorous bound on its rounding error. When the bound exceeds ``rtol`` of the
value (a product much smaller than its factors, where the trace identity cancels), that pair is
recomputed as the explicit product A B instead. Short ranges are finished by direct chains, one
batched matmul per lag, which is cheaper than more levels there.
"""

from __future__ import annotations

import numpy as np
import torch

from bptt_core.progress import checkpoint

from .plan import LEAF

RTOL = 1e-10  # certified relative accuracy of every norm computed through the Gram identity
UNIT_ROUNDOFF = 2.0**-53
CHUNK_BYTES = 32 * 2**20  # bounds the temporaries of the inner products and of the fallbacks


def fro(M: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of each matrix in (B, n, k). Norms below 1e-140 are recomputed scaled by
    their largest entry, where squares of tiny entries could have underflowed (rare)."""
    n = torch.linalg.matrix_norm(M)  # (B,)
    tiny = torch.nonzero(n < 1e-140).flatten()
    if len(tiny):
        sub = M[tiny]
        peak = sub.abs().amax(dim=(1, 2))
        scale = torch.where(peak > 0, peak, 1.0)
        n[tiny] = torch.linalg.matrix_norm(sub / scale[:, None, None]) * scale
    return n


def log10_fro(M: torch.Tensor) -> torch.Tensor:
    return torch.log10(fro(M))  # an all-zero matrix gives -inf


def normalise_(M: torch.Tensor) -> torch.Tensor:
    """Divide each matrix of (B, n, k) by its Frobenius norm in place; return the log10 norms (B,).
    An all-zero matrix stays zero with log 0: the caller tracks exact zeros apart."""
    n = fro(M)  # (B,)
    n = torch.where(n > 0, n, 1.0)
    M.div_(n[:, None, None])
    return torch.log10(n)


def split_plan(T: int, leaf: int | None = None) -> tuple[list[list[tuple[int, int, int]]], list[tuple[int, int]]]:
    """Levels of (lo, m, hi) ranges split at their midpoint m, and the short leaf ranges (lo, hi).

    Every pair s < t of [0, T) is covered exactly once: by the first range that holds both and
    whose midpoint lies in [s, t], or by the leaf that holds both.
    """
    leaf = LEAF if leaf is None else leaf
    levels, leaves, ranges = [], [], [(0, T - 1)]
    while ranges:
        level, nxt = [], []
        for lo, hi in ranges:
            if hi - lo < leaf:
                leaves.append((lo, hi))
                continue
            m = (lo + hi) // 2
            level.append((lo, m, hi))
            nxt += [(lo, m - 1), (m + 1, hi)]
        if level:
            levels.append(level)
        ranges = nxt
    return levels, leaves


def log_norms(Jn: torch.Tensor, block: slice, rtol: float = RTOL) -> np.ndarray:
    """(T, T) float64: log10 ||(Jhat_t ... Jhat_{s+1})[block, block]||_F for s < t, NaN elsewhere.

    ``Jn``: (T, S, S) float64 step Jacobians, each already divided by its own norm (Jn[0] unused).
    """
    T = Jn.shape[0]
    out = np.full((T, T), np.nan)
    levels, leaves = split_plan(T)
    chain = torch.empty_like(Jn)  # (T, S, S): per level, A(t, m) right of each midpoint, B(m, s)^T left
    log_chain = torch.zeros(T, dtype=torch.float64)
    for i, level in enumerate(levels):
        checkpoint(i / (len(levels) + 1), f"level {i + 1} of {len(levels) + 1}")  # in a background job
        grow_chains(Jn, level, chain, log_chain)
        for lo, m, hi in level:
            fill_range_pairs(chain, log_chain, lo, m, hi, block, rtol, out)
    checkpoint(len(levels) / (len(levels) + 1), "the leaves")
    fill_leaf_pairs(Jn, leaves, block, chain, log_chain, out)
    return out


def fill_range_pairs(chain, log_chain, lo, m, hi, block, rtol, out) -> None:
    """Every pair s <= m <= t (s < t) of the range [lo, hi], from the chains grown out of m.

    X_t = A(t, m)[block, :] and X_s = B(m, s)[:, block]^T, so P(t, s)[block, block] = X_t X_s^T and
    ||X_t X_s^T||_F^2 = <X_t^T X_t, X_s^T X_s>: one Gram matrix per step serves all its pairs.
    """
    right, left = slice(m + 1, hi + 1), slice(lo, m)
    Xr, log_r = block_rows(chain[right], log_chain[right], block)  # (nt, n, S) unit norm, (nt,)
    Xl, log_l = block_rows(chain[left], log_chain[left], block)  # (ns, n, S) unit norm, (ns,)
    whole = block == slice(0, chain.shape[1])
    # Pairs (t, m) and (m, s): the blocks of A(t, m) and B(m, s) themselves.
    out[right, m] = (log_r if whole else log_r + log10_fro(Xr[:, :, block])).numpy()
    out[m, left] = (log_l if whole else log_l + log10_fro(Xl[:, :, block])).numpy()
    if len(Xr) == 0 or len(Xl) == 0:
        return
    Gl = torch.bmm(Xl.mT, Xl)  # (ns, S, S)
    S = Xl.shape[2]
    per_chunk = max(1, CHUNK_BYTES // (8 * S * S))
    for c in range(0, len(Xr), per_chunk):  # the right-hand Grams a chunk at a time: memory
        checkpoint()  # a cancelled background job stops here
        Xc = Xr[c : c + per_chunk]  # (nc, n, S)
        v = certified_squared_norms(Xc, Xl, torch.bmm(Xc.mT, Xc), Gl, rtol)  # (nc, ns)
        rows = slice(m + 1 + c, m + 1 + c + len(Xc))
        with np.errstate(divide="ignore"):
            out[rows, left] = 0.5 * np.log10(v.numpy()) + log_r[c : c + len(Xc)].numpy()[:, None] + log_l.numpy()


def grow_chains(Jn, level, chain, log_chain) -> None:
    """chain[t] = A(t, m) = Jhat_t ... Jhat_{m+1} for m < t <= hi, and chain[s] = B(m, s)^T with
    B(m, s) = Jhat_m ... Jhat_{s+1} for lo <= s < m, every range of the level in lockstep.

    Keeping B transposed makes both sides the same kind of matrix (block rows of the product), so
    one Gram matrix X^T X per step serves both. The products are left unnormalised (a product of
    unit-norm factors can only shrink) unless one sinks toward float64's underflow: then it is
    rescaled, and the log10 of the scale, in ``log_chain``, passes down its chain.
    """
    log_chain.zero_()
    rescaled = False
    for i, (right, left, done, before) in enumerate(chain_steps(level), start=1):
        checkpoint()
        nr = len(right)
        new = Jn.new_empty(len(done), *Jn.shape[1:])  # (R + L, S, S)
        if i == 1:  # A(m + 1, m) = Jhat_{m+1}, B(m, m - 1)^T = Jhat_m^T
            new[:nr], new[nr:] = Jn[right], Jn[left + 1].mT
        else:  # A(t, m) = Jhat_t A(t - 1, m); B(m, s)^T = Jhat_{s+1}^T B(m, s + 1)^T
            torch.bmm(Jn[right], chain[right - 1], out=new[:nr])
            torch.bmm(Jn[left + 1].mT, chain[left + 1], out=new[nr:])
            if rescaled:
                log_chain[done] = log_chain[before]
        rescaled |= rescue_from_underflow_(new, log_chain, done)
        chain[done] = new


def rescue_from_underflow_(M: torch.Tensor, log_chain: torch.Tensor, index: torch.Tensor) -> bool:
    """Rescale the matrices of (B, S, S) whose norm fell below 1e-150 (rare), adding the log10 of
    the scale to their ``log_chain[index]``. Whether any was rescaled."""
    n = torch.linalg.matrix_norm(M)  # (B,)
    if not len(n) or float(n.min()) >= 1e-150:
        return False
    sinking = torch.nonzero((n < 1e-150) & (n > 0)).flatten()
    n = fro(M[sinking])  # underflow-safe
    M[sinking] /= n[:, None, None]
    log_chain[index[sinking]] += torch.log10(n)
    return bool(len(sinking))


def chain_steps(level):
    """Per step i of a level: the steps t = m + i and s = m - i still inside their ranges, both
    together, and the chain entries each one extends (t - 1 and s + 1)."""
    lo, m, hi = (np.array(v) for v in zip(*level, strict=True))
    for i in range(1, int(max((hi - m).max(), (m - lo).max())) + 1):
        right, left = (m + i)[m + i <= hi], (m - i)[m - i >= lo]
        yield tuple(torch.from_numpy(a) for a in (right, left, np.r_[right, left], np.r_[right - 1, left + 1]))


def block_rows(X: torch.Tensor, log_x: torch.Tensor, block: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """The block rows of each matrix of (B, S, S), normalised (the whole matrices in place), and
    their log10 scales (B,)."""
    rows = X if block == slice(0, X.shape[1]) else X[:, block, :].clone()  # (B, n, S)
    return rows, log_x + normalise_(rows)


def certified_squared_norms(Xt, Xs, Gt, Gs, rtol: float) -> torch.Tensor:
    """||X_t X_s^T||_F^2 for all t, s by the Gram identity, explicit products where it cannot
    certify ``rtol``. Xt (nt, n, S), Xs (ns, n, S) with unit Frobenius norm; Gt, Gs their Grams.

    With unit norms |<G_t, G_s>| <= 1, and the rounding error of forming the Grams (dots of length
    n <= S) and of the inner product, taken as S dots of length S summed over S rows, is at most
    4 (S + 1) u (Higham, "Accuracy and Stability of Numerical Algorithms", 2002, section 3.1). A
    value v is kept when that bound is within 2 rtol v, i.e. its norm sqrt(v) is within rtol.
    """
    S = Xt.shape[2]
    v = row_summed_inner_products(Gt, Gs)  # (nt, ns)
    ti, si = torch.nonzero(~(2 * rtol * v > 4 * (S + 1) * UNIT_ROUNDOFF), as_tuple=True)
    step = max(1, CHUNK_BYTES // (8 * Xt.shape[1] ** 2))
    for c in range(0, len(ti), step):  # rare: products much smaller than their factors
        t, s = ti[c : c + step], si[c : c + step]
        v[t, s] = fro(torch.bmm(Xt[t], Xs[s].mT)) ** 2
    return v


def row_summed_inner_products(Gt: torch.Tensor, Gs: torch.Tensor) -> torch.Tensor:
    """v[t, s] = sum_i (sum_j Gt[t, i, j] Gs[s, i, j]): a length-S dot per row i, then a sum over
    the rows (rounding error ~ 2 S u, not the S^2 u of one dot of length S^2)."""
    nt, S, _ = Gt.shape
    ns = Gs.shape[0]
    rows_t = Gt.permute(1, 0, 2)  # (S, nt, S): row i of every G_t
    rows_s = Gs.permute(1, 2, 0)  # (S, S, ns): row i of every G_s, as columns
    per_chunk = max(1, CHUNK_BYTES // (8 * nt * ns))
    v = Gt.new_zeros(nt, ns)
    for i in range(0, S, per_chunk):
        v += torch.bmm(rows_t[i : i + per_chunk], rows_s[i : i + per_chunk]).sum(0)  # (rows, nt, ns) summed
    return v


def fill_leaf_pairs(Jn, leaves, block, chain, log_chain, out) -> None:
    """Pairs inside each short leaf range by direct chains: P(t, t - k) = Jhat_t P(t - 1, t - k),
    one bmm per lag k over every leaf at once (in chunks of steps, latest first, so that a chunk
    never reads a chain entry another chunk of the same lag has already extended)."""
    if not leaves:
        return
    T, S, _ = Jn.shape
    start = np.full(T, T)  # start[t]: first step of the leaf holding t (T: none, t is a midpoint)
    for lo, hi in leaves:
        start[lo : hi + 1] = lo
    per_chunk = max(1, CHUNK_BYTES // (8 * S * S))
    for k in range(1, max(hi - lo for lo, hi in leaves) + 1):
        steps = np.nonzero(np.arange(T) - k >= start)[0]
        for c in range(len(steps), 0, -per_chunk):
            t = steps[max(0, c - per_chunk) : c]
            ti = torch.from_numpy(t)
            new, prev = (Jn[ti], 0.0) if k == 1 else (torch.bmm(Jn[ti], chain[ti - 1]), log_chain[ti - 1])
            log_new = prev + normalise_(new)
            block_log = 0.0 if block == slice(0, S) else log10_fro(new[:, block, block])
            out[t, t - k] = (log_new + block_log).numpy()
            chain[ti], log_chain[ti] = new, log_new
