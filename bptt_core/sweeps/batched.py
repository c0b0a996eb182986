"""Sweeps measured in batches: the networks of one shape stacked and run forward and differentiated
together with ``torch.func.vmap`` over :class:`bptt_core.models.recurrent.CellView` (the one owner of
every cell's equations), the Lyapunov QR step one batched QR, the gradient-flow chain one batched
matmul per step. The weights of every network come from :func:`bptt_core.models.build.build_model`,
so a grid point is exactly the network the pages build, and :func:`single_measures` measures one
network alone with the single-network functions, as the reference the tests hold the batches to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from bptt_core.config import (
    state_size,
)
from bptt_core.flow.jacobians import block_norms, jacobian_log_norms, log_norm_products, refine_tiny_norms
from bptt_core.flow.spectra import lyapunov_exponents, spectrum
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.learning.training import TrainConfig, _run, batches
from bptt_core.models.build import build_model, build_task
from bptt_core.models.recurrent import ACTIVATION_GAMMA, CellView, cell_view, recurrent_matrix
from bptt_core.sweeps.grid import FLOW_MEASURES, LYAPUNOV_MAX_EXPONENTS, Network

SUBBATCH_BYTES = 256 * 2**20  # bounds the stacked step Jacobians and chain buffers of one sub-batch
SMALL_CHAIN_BYTES = 512 * 2**10  # a chain's (T S, S) buffer up to this size runs stacked with others
STACKED_CHAIN_BYTES = 8 * 2**20  # the stacked chain's buffers per batched matmul


# -- the grid --------------------------------------------------------------------------------------


# -- one network, the reference -------------------------------------------------------------------


def build_network(net: Network):
    """The module, input (T, I) and initial state (or None) of one grid point, as the pages build them."""

    rnn, _ = build_model(net.cfg)
    x = build_task(net.cfg).x[:, 0]  # (T, I) float32
    if net.input_scale != 1.0:
        x = x * net.input_scale
    if net.bias_scale > 0:
        gen = torch.Generator().manual_seed(net.cfg.seed + 3)  # seed, +1, +2 seed weights, readout, data
        b = rnn.bias_ih_l0
        with torch.no_grad():
            b.add_(torch.randn(b.shape, generator=gen) * net.bias_scale)
    h0 = None
    if net.h0_scale > 0:
        gen = torch.Generator().manual_seed(net.cfg.seed + 4)
        h0 = torch.randn(state_size(net.cfg.cell, net.cfg.hidden_size), generator=gen, dtype=torch.float64)
        h0 = h0 * net.h0_scale
    return rnn, x, h0


def single_measures(net: Network, measures=("lyapunov", "decay_rate", "memory_horizon"), burn_in: int = 0) -> dict:
    """Every measure of one network computed alone, by the single-network library functions."""

    rnn, x, h0 = build_network(net)
    out = {}
    if "lyapunov" in measures:
        m = min(state_size(net.cfg.cell, net.cfg.hidden_size), LYAPUNOV_MAX_EXPONENTS)
        out["lyapunov"] = float(lyapunov_exponents(rnn, x, h0, n_exponents=m, burn_in=burn_in)[0] / math.log(10))
    if any(m in FLOW_MEASURES for m in measures):
        L = jacobian_log_norms(rnn, x, h0)
        out["decay_rate"] = decay_rate(L)
        out["memory_horizon"] = _horizon(L)
    if "sigma1_gamma" in measures:
        sp = spectrum(rnn)
        out["sigma1_gamma"] = sp.gamma * sp.sigma1
    if "trainability" in measures:
        out["trainability"] = trainability(net, "adding", 30, 0.01)
    return {k: out[k] for k in measures}


def _horizon(L: np.ndarray) -> float:
    """memory_horizon as a number: NaN when the norm never drops below 1e-3 within T (or T = 1)."""

    if L.shape[0] < 2:
        return float("nan")
    h = memory_horizon(L)
    return float("nan") if h is None else float(h)


# -- the batched engine ---------------------------------------------------------------------------


@dataclass
class Stack:
    """N networks of one kind and shape, their float64 weights stacked along a leading axis."""

    kind: str
    activation: str
    input_size: int
    hidden_size: int
    W_ih: torch.Tensor  # (N, G*H, I)
    W_hh: torch.Tensor  # (N, G*H, H)
    b_ih: torch.Tensor  # (N, G*H)
    b_hh: torch.Tensor  # (N, G*H)
    x: torch.Tensor  # (N, T, I) float64
    h0: torch.Tensor  # (N, S) float64
    rnns: list = field(default_factory=list)

    @property
    def state_size(self) -> int:
        return state_size(self.kind, self.hidden_size)


def stack_networks(nets: list[Network]) -> Stack:

    views, xs, h0s, rnns = [], [], [], []
    for net in nets:
        rnn, x, h0 = build_network(net)
        view = cell_view(rnn)
        views.append(view)
        xs.append(x.to(torch.float64))
        h0s.append(view.initial_state(h0)[0])
        rnns.append(rnn)
    v = views[0]
    same = {(w.kind, w.activation, w.input_size, w.hidden_size) for w in views}
    if len(same) != 1 or len({x.shape for x in xs}) != 1:
        raise ValueError("stack_networks: every network of a stack must have the same cell and shape")
    return Stack(
        v.kind,
        v.activation,
        v.input_size,
        v.hidden_size,
        *(torch.stack([getattr(w, k) for w in views]) for k in ("W_ih", "W_hh", "b_ih", "b_hh")),
        x=torch.stack(xs),
        h0=torch.stack(h0s),
        rnns=rnns,
    )


def batched_step_jacobians(stack: Stack) -> torch.Tensor:
    """Every network's exact step Jacobians, (N, T, S, S) float64: CellView's own formulas under vmap."""

    def one(W_ih, W_hh, b_ih, b_hh, x, h0):
        view = CellView(stack.kind, stack.activation, stack.input_size, stack.hidden_size, W_ih, W_hh, b_ih, b_hh)
        states = view.run(x, h0)  # (T + 1, S)
        return view.step_jacobians(x, states[:-1])  # (T, S, S)

    return torch.func.vmap(one)(stack.W_ih, stack.W_hh, stack.b_ih, stack.b_hh, stack.x, stack.h0)


LYAPUNOV_BLOCK_STEPS = 8  # step Jacobians formed this many steps at a time when nothing else needs them


def batched_lyapunov_blocked(stack: Stack, burn_in: int = 0) -> np.ndarray:
    """lambda_1 (natural log per step), (N,), forming the step Jacobians a few steps at a time (the same
    numbers as :func:`batched_lyapunov_top` on all of them, without holding (N, T, S, S))."""

    def view(W_ih, W_hh, b_ih, b_hh):
        return CellView(stack.kind, stack.activation, stack.input_size, stack.hidden_size, W_ih, W_hh, b_ih, b_hh)

    weights = (stack.W_ih, stack.W_hh, stack.b_ih, stack.b_hh)
    states = torch.func.vmap(lambda *a: view(*a[:4]).run(a[4], a[5]))(*weights, stack.x, stack.h0)  # (N, T+1, S)
    N, T = stack.x.shape[:2]
    S = states.shape[-1]
    jac = torch.func.vmap(lambda *a: view(*a[:4]).step_jacobians(a[4], a[5]))
    Q = torch.eye(S, 1, dtype=torch.float64).expand(N, S, 1).contiguous()  # (N, S, 1)
    total = torch.zeros(N, dtype=torch.float64)
    for t0 in range(0, T, LYAPUNOV_BLOCK_STEPS):
        blk = slice(t0, min(T, t0 + LYAPUNOV_BLOCK_STEPS))
        J = jac(*weights, stack.x[:, blk], states[:, blk])  # (N, B, S, S)
        for j in range(J.shape[1]):
            Q, R = torch.linalg.qr(J[:, j] @ Q)  # (N, S, 1), (N, 1, 1)
            if t0 + j >= burn_in:
                total += torch.log(torch.abs(R[:, 0, 0]))
    return (total / (T - burn_in)).numpy()


def batched_lyapunov_top(J: torch.Tensor, n_exponents: int = 1, burn_in: int = 0) -> np.ndarray:
    """Top Lyapunov exponents (natural log per step), (N, n_exponents), by one batched QR per step.

    The same recursion as :func:`bptt_core.flow.spectra.lyapunov_exponents` (Q_0 = I, Z_t = J_t Q_{t-1} =
    Q_t R_t, mean of log |R_t[i, i]|). Its first column does not depend on how many columns are
    carried, so lambda_1 from one column equals the page's lambda_1 from min(S, 64) columns.
    """
    N, T, S, _ = J.shape
    Q = torch.eye(S, n_exponents, dtype=J.dtype).expand(N, S, n_exponents).contiguous()  # (N, S, m)
    total = torch.zeros(N, n_exponents, dtype=torch.float64)
    for t in range(T):
        Q, R = torch.linalg.qr(J[:, t] @ Q)  # (N, S, m), (N, m, m)
        if t >= burn_in:
            total += torch.log(torch.abs(torch.diagonal(R, dim1=1, dim2=2)))
    return (total / (T - burn_in)).numpy()


def batched_log_norm_products(J: torch.Tensor, block: slice, dtype=torch.float32) -> np.ndarray:
    """(N, T, T) gradient-flow matrices of a stack of (T, S, S) Jacobian chains: the chain method of
    :func:`bptt_core.flow.jacobians.log_norm_products`, one batched matmul per step for all networks."""

    N, T, S, _ = J.shape
    nb = len(range(S)[block])
    out = np.full((N, T, T), np.nan)
    idx = np.arange(T)
    out[:, idx, idx] = 0.5 * math.log10(nb)
    if T == 1:
        return out
    n = torch.linalg.matrix_norm(J)  # (N, T) float64
    zero = n == 0
    log_n = torch.where(zero, 0.0, torch.log10(torch.where(zero, 1.0, n)))
    cum_log = torch.cat([n.new_zeros(N, 1), torch.cumsum(log_n, 1)], 1).numpy()  # (N, T + 1)
    cum_zero = torch.cat([torch.zeros(N, 1, dtype=torch.long), torch.cumsum(zero.long(), 1)], 1).numpy()
    scale = torch.where(zero, 1.0, n)[:, :, None, None]  # (N, T, 1, 1)
    JT = (J / scale).to(dtype).transpose(2, 3).contiguous()  # (N, T, S, S)
    whole = block == slice(0, S)
    bufs = (JT.new_empty(N, (T - 1) * S, S), JT.new_empty(N, (T - 1) * S, S))
    acc = torch.zeros(N, T, dtype=torch.float64)
    R = bufs[0][:, :S]
    R.copy_(JT[:, 1])
    parts, accs = [], []
    for t in range(1, T):
        blocks = R.reshape(N * t, S, S)  # every product ending at t, all networks
        full = refine_tiny_norms(blocks, torch.linalg.matrix_norm(blocks).to(torch.float64))  # (N t,)
        part = full if whole else block_norms(blocks, "fro", block)
        parts.append(part.reshape(N, t))
        accs.append(acc[:, :t].clone())
        if t == T - 1:
            break
        full = full.reshape(N, t)
        if bool(((full > 0) & (full < 1e-8)).any()):
            sc = torch.where(full > 0, full, 1.0)  # (N, t)
            R.view(N, t, S, S).div_(sc.to(R.dtype)[:, :, None, None])
            acc[:, :t] += torch.log10(sc)
        nxt = bufs[t % 2][:, : (t + 1) * S]
        torch.bmm(R, JT[:, t + 1], out=nxt[:, : t * S])
        nxt[:, t * S :].copy_(JT[:, t + 1])
        R = nxt
    tt, ss = np.tril_indices(T, -1)
    with np.errstate(divide="ignore"):
        rel = np.log10(torch.cat(parts, 1).numpy()) + torch.cat(accs, 1).numpy()  # (N, T(T-1)/2)
    val = rel + cum_log[:, tt + 1] - cum_log[:, ss + 1]
    has_zero = cum_zero[:, tt + 1] - cum_zero[:, ss + 1] > 0
    val[has_zero] = -np.inf
    out[:, tt, ss] = val
    if dtype != torch.float64:
        for i in np.nonzero((np.isneginf(val) & ~has_zero).any(1))[0]:  # float32 lost a tiny product
            out[i] = log_norm_products(J[i], "fro", block, torch.float64, "chain")
    return out


def flow_matrices(J: torch.Tensor, block: slice, dtype=torch.float32) -> np.ndarray:
    """(N, T, T) gradient-flow matrices. Small chains (whose buffers fit in cache) run stacked, a few
    networks per batched matmul; large ones already saturate the core with their own tall matmuls, so
    each goes through the page's own :func:`~bptt_core.flow.jacobians.log_norm_products` (stacking them
    only spills the cache: measured 3x slower at H = 64, T = 200)."""

    N, T, S, _ = J.shape
    per_net = T * S * S * torch.finfo(dtype).bits // 8
    if per_net > SMALL_CHAIN_BYTES:
        return np.stack([log_norm_products(J[i], "fro", block, dtype) for i in range(N)])
    step = max(1, STACKED_CHAIN_BYTES // per_net)
    return np.concatenate([batched_log_norm_products(J[i : i + step], block, dtype) for i in range(0, N, step)])


def _subbatches(nets: list[Network], flow: bool) -> list[list[int]]:
    """Indices grouped by shape (cell, H, T), each group cut to bound the stacked buffers."""
    groups: dict = {}
    for i, net in enumerate(nets):
        groups.setdefault((net.cfg.hidden_size, net.cfg.seq_len), []).append(i)
    out = []
    for (H, T), idx in groups.items():
        S = state_size(nets[0].cfg.cell, H)
        per_net = (T * S * S * 16 if flow else LYAPUNOV_BLOCK_STEPS * S * S * 8) + T * S * 8
        size = max(1, SUBBATCH_BYTES // per_net)
        out += [idx[i : i + size] for i in range(0, len(idx), size)]
    return out


def measure_networks(nets: list[Network], measures, train=("adding", 30, 0.01), burn_in: int = 0) -> list[dict]:
    """Every measure of every network, the networks of one shape stacked and computed together."""
    results: list[dict] = [{} for _ in nets]
    flow = any(m in FLOW_MEASURES for m in measures)
    batched = [m for m in measures if m != "trainability"]
    if batched:
        for idx in _subbatches(nets, flow):
            stack = stack_networks([nets[i] for i in idx])
            vals = _measure_stack(stack, batched, burn_in)
            for j, i in enumerate(idx):
                results[i].update({m: vals[m][j] for m in batched})
    if "trainability" in measures:
        for i, net in enumerate(nets):
            results[i]["trainability"] = trainability(net, *train)
    return results


def _measure_stack(stack: Stack, measures, burn_in: int = 0) -> dict:

    out: dict = {}
    if "sigma1_gamma" in measures:

        def matrix(W_hh):  # the matrix the Spectrum page describes (recurrent_matrix owns the rule)
            return recurrent_matrix(
                CellView(stack.kind, stack.activation, 0, stack.hidden_size, None, W_hh, None, None)
            )

        W = torch.func.vmap(matrix)(stack.W_hh)  # (N, H, H)
        gamma = ACTIVATION_GAMMA[stack.activation] if stack.kind == "rnn" else 1.0
        out["sigma1_gamma"] = (gamma * torch.linalg.svdvals(W)[:, 0]).tolist()
    if not any(m in ("lyapunov", *FLOW_MEASURES) for m in measures):
        return out
    if not any(m in FLOW_MEASURES for m in measures):  # lambda_1 alone: no need to hold every J_t
        with torch.no_grad():
            out["lyapunov"] = (batched_lyapunov_blocked(stack, burn_in) / math.log(10)).tolist()
        return out
    with torch.no_grad():
        J = batched_step_jacobians(stack)  # (N, T, S, S)
    if "lyapunov" in measures:
        out["lyapunov"] = (batched_lyapunov_top(J, 1, burn_in)[:, 0] / math.log(10)).tolist()
    if any(m in FLOW_MEASURES for m in measures):
        dtype = torch.float64 if next(stack.rnns[0].parameters()).dtype == torch.float64 else torch.float32
        L = flow_matrices(J, slice(0, stack.hidden_size), dtype)  # (N, T, T)
        out["decay_rate"] = [decay_rate(Li) for Li in L]
        out["memory_horizon"] = [_horizon(Li) for Li in L]
    return out


def trainability(net: Network, task: str = "adding", steps: int = 30, lr: float = 0.01) -> float:
    """Mean loss of the last 10% of steps of a short SGD run on ``task``; NaN if it diverged.

    The network has the grid point's settings with the task swapped (so W_ih has the task's input
    width), the sweep's input scale applied to every batch and its bias added."""

    cfg = replace(net.cfg, task=task, input_size=0)
    tnet = replace(net, cfg=cfg)
    rnn, _, _ = build_network(tnet)

    _, readout = build_model(cfg)
    train_cfg = TrainConfig(steps=steps, lr=lr, batch_size=16, seed=net.cfg.seed)
    data = batches(cfg, train_cfg)
    if net.input_scale != 1.0:
        data = [replace(b, x=b.x * net.input_scale) for b in data]
    result = _run(rnn, readout, data, cfg, train_cfg, None)
    if result.diverged_at is not None:
        return float("nan")
    loss = result.history["loss"].to_numpy()
    return float(np.mean(loss[-max(1, steps // 10) :]))


# -- chunks, local and distributed ----------------------------------------------------------------


# -- the measured boundary ------------------------------------------------------------------------


# -- theory on the grid ----------------------------------------------------------------------------


# -- the edge of chaos ----------------------------------------------------------------------------


# -- sweep files ----------------------------------------------------------------------------------


# -- what the Phase diagram page asks of a grid ----------------------------------------------------
