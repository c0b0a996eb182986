"""Sweeps: a grid of networks, each measured exactly as the single-network pages measure it.

The landscape view of Poole et al. (2016, "Exponential expressivity in deep neural networks through
transient chaos"), Chen, Pennington & Schoenholz (2018) and Vogt et al. (2022, Lyapunov exponents
across hyperparameters): one or two settings vary over a grid, everything else is fixed, and every
grid point (times several seeds) is one network with its own measures:

- ``lyapunov``: the top Lyapunov exponent lambda_1 in log10 per step, as the Spectrum page shows it
  (:func:`bptt_core.spectra.lyapunov_exponents`, QR method, from Q_0 = I);
- ``decay_rate`` and ``memory_horizon`` of ||dh_t/dh_{t-k}||, read off the gradient-flow matrix by
  :func:`bptt_core.jacobians.decay_rate` / :func:`~bptt_core.jacobians.memory_horizon` as on the
  Gradient flow page (Frobenius norm, the h block);
- ``sigma1_gamma``: gamma * sigma_1 of the recurrent matrix (Pascanu, Mikolov & Bengio 2013);
- ``trainability``: the mean loss of the last 10% of a short training run (copy or adding task).

Batched, not a loop of single networks: the networks of one shape are stacked, run forward and
differentiated together with ``torch.func.vmap`` over :class:`bptt_core.models.CellView` (the one
owner of every cell's equations), the Lyapunov QR step is one batched QR, and the gradient-flow
chain is one batched matmul per step. The weights of every network come from
:func:`bptt_core.build.build_model`, so a grid point is exactly the network the pages build.

Settings beyond :class:`~bptt_core.config.ModelConfig` (sweep-local, ModelConfig is unchanged):
``input_scale`` multiplies the input sequence (equivalently W_ih); ``bias_scale`` adds
b ~ N(0, bias_scale^2) to every pre-activation (seeded by seed + 3); ``h0_scale`` draws the initial
state from N(0, h0_scale^2) (seed + 4; 0 = the pages' h_0 = 0). Chunks of the grid are a pure
function of the spec, computed single-threaded, so any machine computing a chunk gets the same bits.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .config import (
    MAX_GAIN,
    ModelConfig,
    check_choice,
    check_float,
    check_int,
    check_jacobian_memory,
    state_size,
)

SWEEP_CELLS = ("rnn", "lstm", "gru")  # what the batched engine stacks (the diagonal cells: not yet)
AXES = ("gain", "spectral_radius", "input_scale", "bias_scale", "hidden_size", "seq_len")
INT_AXES = ("hidden_size", "seq_len")
MEASURES = ("lyapunov", "decay_rate", "memory_horizon", "sigma1_gamma", "trainability")
FLOW_MEASURES = ("decay_rate", "memory_horizon")
TRAIN_TASKS = ("adding", "copy")
MAX_SWEEP_NETWORKS = 100_000  # grid points x seeds in one sweep (documented in the README)
MAX_AXIS_COUNT = 1000  # points along one axis
MAX_SEEDS = 100
MAX_SCALE = 100.0
LYAPUNOV_MAX_EXPONENTS = 64  # what the Spectrum page computes; lambda_1 is its first
SUBBATCH_BYTES = 256 * 2**20  # bounds the stacked step Jacobians and chain buffers of one sub-batch
SMALL_CHAIN_BYTES = 512 * 2**10  # a chain's (T S, S) buffer up to this size runs stacked with others
STACKED_CHAIN_BYTES = 8 * 2**20  # the stacked chain's buffers per batched matmul
DEFAULT_CHUNK = 32  # networks per chunk (one Dask task)


# -- the grid --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One swept setting: ``count`` evenly spaced values from ``start`` to ``stop`` inclusive."""

    name: str  # one of AXES
    start: float
    stop: float
    count: int

    def __post_init__(self):
        check_choice("axis", self.name, AXES)
        check_int(f"{self.name} count", self.count, 1, MAX_AXIS_COUNT)
        for end in ("start", "stop"):
            check_float(f"{self.name} {end}", getattr(self, end), -1e9, 1e9)
        if self.count == 1 and self.start != self.stop:
            raise ValueError(f"{self.name}: a range {self.start:g}..{self.stop:g} with count 1 is ambiguous")
        if self.name in INT_AXES:
            bad = [v for v in self._raw() if not float(v).is_integer()]
            if bad:
                raise ValueError(
                    f"{self.name} takes whole numbers; {self.start:g}:{self.stop:g}:{self.count} gives {bad[0]:g}"
                )

    def _raw(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.count)

    @property
    def values(self) -> list:
        raw = self._raw()
        return [int(round(v)) for v in raw] if self.name in INT_AXES else [float(v) for v in raw]

    @classmethod
    def parse(cls, text: str, option: str = "--x") -> Axis:
        """'SETTING:START:STOP:COUNT', e.g. 'gain:0.5:3.0:6'."""
        parts = str(text).split(":")
        if len(parts) != 4:
            raise ValueError(f"{option} must be SETTING:START:STOP:COUNT (e.g. gain:0.5:3.0:6), got {text!r}")
        name, start, stop, count = parts
        if name not in AXES:
            raise ValueError(f"{option}: unknown setting {name!r}; sweepable settings: {', '.join(AXES)}")
        try:
            start_f, stop_f = float(start), float(stop)
        except ValueError:
            raise ValueError(f"{option}: START and STOP must be numbers, got {start!r} and {stop!r}") from None
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"{option}: COUNT must be a whole number, got {count!r}") from None
        if n < 1:
            raise ValueError(f"{option}: empty range for {name} (COUNT = {n}); COUNT must be at least 1")
        return cls(name, start_f, stop_f, n)


@dataclass(frozen=True)
class Network:
    """One network of the grid: the model settings and the sweep-local ones."""

    cfg: ModelConfig
    input_scale: float = 1.0
    bias_scale: float = 0.0
    h0_scale: float = 0.0


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: what varies, what is fixed, what is measured, how it is cut into chunks."""

    base: ModelConfig  # every setting that does not vary (cell, activation, init, task, ...)
    x: Axis
    y: Axis | None = None
    seeds: int = 1  # seeds base.seed, base.seed + 1, ...
    measures: tuple = ("lyapunov",)
    input_scale: float = 1.0  # fixed value unless an axis sweeps it
    bias_scale: float = 0.0  # fixed value unless an axis sweeps it
    h0_scale: float = 0.0  # initial state N(0, h0_scale^2); 0 = h_0 = 0 as on the pages
    burn_in: int = 0  # lambda_1: steps not averaged (0 = every step, as the Spectrum page)
    train_task: str = "adding"  # trainability: the task of the short run
    train_steps: int = 30  # trainability: optimiser steps
    train_lr: float = 0.01  # trainability: SGD learning rate
    chunk_size: int = DEFAULT_CHUNK  # networks per chunk

    def __post_init__(self):
        if not isinstance(self.base, ModelConfig):
            raise ValueError(f"base must be a ModelConfig, got {type(self.base).__name__}")
        if self.base.cell not in SWEEP_CELLS or self.base.num_layers != 1:
            raise ValueError(
                f"cell must be one of {', '.join(SWEEP_CELLS)} with one layer for a sweep (the batched engine "
                f"stacks their weight matrices); got {self.base.cell} with {self.base.num_layers} layer(s)"
            )
        if self.y is not None and self.y.name == self.x.name:
            raise ValueError(f"--x and --y sweep the same setting {self.x.name!r}; choose two different settings")
        check_int("seeds", self.seeds, 1, MAX_SEEDS)
        measures = tuple(self.measures)
        if not measures:
            raise ValueError(f"measure: choose at least one of {', '.join(MEASURES)}")
        for m in measures:
            if m not in MEASURES:
                raise ValueError(f"measure: unknown measure {m!r}; choose from {', '.join(MEASURES)}")
        object.__setattr__(self, "measures", measures)
        for name in ("input_scale", "bias_scale", "h0_scale"):
            check_float(name, getattr(self, name), 0.0, MAX_SCALE)
        check_choice("train_task", self.train_task, TRAIN_TASKS)
        check_int("train_steps", self.train_steps, 1, 1000)
        check_float("train_lr", self.train_lr, 0.0, 10.0, lo_open=True)
        check_int("chunk_size", self.chunk_size, 1, 4096)
        shortest = min(self._axis_extremes("seq_len", self.base.seq_len))
        check_int("burn_in", self.burn_in, 0, max(0, shortest - 1))
        if self.base.seed + self.seeds - 1 > 2**31 - 1:
            raise ValueError(f"seeds: seed + seeds - 1 must stay below 2^31, got {self.base.seed} + {self.seeds}")
        n = self.n_networks
        if n > MAX_SWEEP_NETWORKS:
            raise ValueError(
                f"too many networks: {self.grid_shape} grid points x {self.seeds} seeds = {n}; "
                f"the limit is {MAX_SWEEP_NETWORKS} per sweep (split the range)"
            )
        for axis in self.axes:  # both ends through the library's own checks (names the setting)
            for v in (axis.start, axis.stop):
                self.network(**{axis.name: v}, seed=self.base.seed)
        if any(m in FLOW_MEASURES for m in self.measures):
            H = max(self._axis_extremes("hidden_size", self.base.hidden_size))
            T = max(self._axis_extremes("seq_len", self.base.seq_len))
            check_jacobian_memory(self.base.cell, H, T)

    def _axis_extremes(self, name: str, default):
        ends = [(a.start, a.stop) for a in self.axes if a.name == name]
        return [int(v) for v in ends[0]] if ends else [default]

    @property
    def axes(self) -> tuple[Axis, ...]:
        return (self.x,) if self.y is None else (self.x, self.y)

    @property
    def grid_shape(self) -> str:
        return " x ".join(str(a.count) for a in self.axes)

    @property
    def n_points(self) -> int:
        return math.prod(a.count for a in self.axes)

    @property
    def n_networks(self) -> int:
        return self.n_points * self.seeds

    def network(self, seed: int, **values) -> Network:
        """The network at these axis values (ValueError naming a setting out of range)."""
        fixed = {"input_scale": self.input_scale, "bias_scale": self.bias_scale}
        scales = {k: values.pop(k, v) for k, v in fixed.items()}
        for k, v in scales.items():
            check_float(k, v, 0.0, MAX_SCALE)
        cfg = replace(self.base, seed=int(seed), **values)
        return Network(cfg, float(scales["input_scale"]), float(scales["bias_scale"]), self.h0_scale)

    def rows(self) -> list[dict]:
        """The axis values and seed of every network, in table order (y outer, x, then seed)."""
        ys = self.y.values if self.y is not None else [None]
        out = []
        for yv in ys:
            for xv in self.x.values:
                for k in range(self.seeds):
                    row = {self.x.name: xv}
                    if self.y is not None:
                        row[self.y.name] = yv
                    row["seed"] = self.base.seed + k
                    out.append(row)
        return out

    def chunks(self) -> list[range]:
        """Row indices of each chunk: a pure function of the spec (so every run cuts it the same way)."""
        n = self.n_networks
        return [range(i, min(i + self.chunk_size, n)) for i in range(0, n, self.chunk_size)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["measures"] = list(self.measures)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        d = dict(d)
        d["base"] = ModelConfig.from_dict(d["base"])
        d["x"] = Axis(**d["x"])
        d["y"] = Axis(**d["y"]) if d.get("y") else None
        d["measures"] = tuple(d["measures"])
        return cls(**d)


# -- one network, the reference -------------------------------------------------------------------


def build_network(net: Network):
    """The module, input (T, I) and initial state (or None) of one grid point, as the pages build them."""
    from .build import build_model, build_task

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
    from .jacobians import decay_rate, jacobian_log_norms
    from .spectra import lyapunov_exponents, spectrum

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
    from .jacobians import memory_horizon

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
    from .models import cell_view

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
    from .models import CellView

    def one(W_ih, W_hh, b_ih, b_hh, x, h0):
        view = CellView(stack.kind, stack.activation, stack.input_size, stack.hidden_size, W_ih, W_hh, b_ih, b_hh)
        states = view.run(x, h0)  # (T + 1, S)
        return view.step_jacobians(x, states[:-1])  # (T, S, S)

    return torch.func.vmap(one)(stack.W_ih, stack.W_hh, stack.b_ih, stack.b_hh, stack.x, stack.h0)


LYAPUNOV_BLOCK_STEPS = 8  # step Jacobians formed this many steps at a time when nothing else needs them


def batched_lyapunov_blocked(stack: Stack, burn_in: int = 0) -> np.ndarray:
    """lambda_1 (natural log per step), (N,), forming the step Jacobians a few steps at a time (the same
    numbers as :func:`batched_lyapunov_top` on all of them, without holding (N, T, S, S))."""
    from .models import CellView

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

    The same recursion as :func:`bptt_core.spectra.lyapunov_exponents` (Q_0 = I, Z_t = J_t Q_{t-1} =
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
    :func:`bptt_core.jacobians.log_norm_products`, one batched matmul per step for all networks."""
    from .jacobians import _block_norms, _refine_tiny_norms, log_norm_products

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
        full = _refine_tiny_norms(blocks, torch.linalg.matrix_norm(blocks).to(torch.float64))  # (N t,)
        part = full if whole else _block_norms(blocks, "fro", block)
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
    each goes through the page's own :func:`~bptt_core.jacobians.log_norm_products` (stacking them
    only spills the cache: measured 3x slower at H = 64, T = 200)."""
    from .jacobians import log_norm_products

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
    from .jacobians import decay_rate
    from .models import ACTIVATION_GAMMA, CellView, recurrent_matrix

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
    from .training import TrainConfig, _run, batches

    cfg = replace(net.cfg, task=task, input_size=0)
    tnet = replace(net, cfg=cfg)
    rnn, _, _ = build_network(tnet)
    from .build import build_model

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


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"depth": 0, "before": 1}


@contextmanager
def single_thread():
    """One intra-op thread while chunks compute: then any machine computes the same bits. Re-entrant
    across the local run's threads (torch's setting is global): the last one out restores it."""
    with _THREADS_LOCK:
        if _THREADS_STATE["depth"] == 0:
            _THREADS_STATE["before"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["depth"] -= 1
            if _THREADS_STATE["depth"] == 0:
                torch.set_num_threads(_THREADS_STATE["before"])


def compute_chunk(spec: SweepSpec, index: int) -> pd.DataFrame:
    """The rows of chunk ``index``: axis values, seed, then one column per measure."""
    rows = spec.rows()
    chunk = spec.chunks()[index]
    part = [rows[i] for i in chunk]
    nets = [spec.network(**{k: v for k, v in r.items()}) for r in part]
    with single_thread():
        vals = measure_networks(nets, spec.measures, (spec.train_task, spec.train_steps, spec.train_lr), spec.burn_in)
    frame = pd.DataFrame([{**r, **v} for r, v in zip(part, vals, strict=True)])
    frame.insert(0, "row", list(chunk))
    return frame


def table_columns(spec: SweepSpec) -> list[str]:
    return [a.name for a in spec.axes] + ["seed", *spec.measures]


def assemble(spec: SweepSpec, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunk frames in table order, columns axis settings, seed, measures."""
    table = pd.concat(frames, ignore_index=True).sort_values("row").reset_index(drop=True)
    return table[table_columns(spec)]


Progress = Callable[[int, int], None]


def run_local(spec: SweepSpec, progress: Progress | None = None, on_chunk=None, skip=(), workers: int | None = None):
    """Compute every chunk in this process (threads, one torch thread each); ``on_chunk(i, frame)``
    is called as each finishes, ``progress(done, total)`` after it. Returns the frames by index."""
    n = len(spec.chunks())
    todo = [i for i in range(n) if i not in set(skip)]
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    frames: dict[int, pd.DataFrame] = {}
    done = n - len(todo)

    def finished(i: int, frame) -> None:
        nonlocal done
        frames[i] = frame
        done += 1
        if on_chunk:
            on_chunk(i, frame)
        if progress:
            progress(done, n)

    if workers == 1 or len(todo) <= 1:
        for i in todo:
            finished(i, compute_chunk(spec, i))
        return frames
    with ThreadPoolExecutor(workers) as pool:
        futs = {pool.submit(compute_chunk, spec, i): i for i in todo}
        for fut in as_completed(futs):
            finished(futs[fut], fut.result())
    return frames


def sweep(spec: SweepSpec, progress: Progress | None = None) -> pd.DataFrame:
    """The whole table, computed here: one row per grid point and seed."""
    return assemble(spec, list(run_local(spec, progress).values()))


def summarise(table: pd.DataFrame, axes: list[str], measure: str) -> pd.DataFrame:
    """Mean and spread (standard deviation over seeds, 0 for one seed) of a measure at every grid point."""
    g = table.groupby(axes, sort=True)[measure]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def phase_figure(table: pd.DataFrame, axes: list[str], measure: str, stat: str = "mean", seeds: int = 1,
                 line: TheoryLine | None = None, edge: float | None = None):  # fmt: skip
    """The phase diagram of a sweep's table: ``measure``'s seed mean (``stat="mean"``) or spread
    (``"std"``) at every grid point, the measured lambda_1 = 0 contour (two axes, when the table has
    lambda_1), the mean-field ``line`` and the edge finder's gain. The page and the command line draw this."""
    from .figures import phase_diagram

    if stat not in ("mean", "std"):
        raise ValueError(f"stat must be 'mean' or 'std'; got {stat!r}")
    x, y = axes[0], axes[1] if len(axes) > 1 else None
    summary = summarise(table, axes, measure)
    if stat == "std":  # the one-axis curve is drawn from the mean column: it shows the spread instead
        summary = summary.assign(mean=summary["std"])
    lyap = summarise(table, axes, "lyapunov") if "lyapunov" in table and y is not None else None
    drawn = line is not None and line.frame is not None
    return phase_diagram(
        summary, x, y, measure, stat, lyapunov=lyap,
        theory=line.frame if drawn else None, theory_axes=(line.gain_axis, line.other_axis) if drawn else None,
        edge=edge, seeds=seeds,
    )  # fmt: skip


# -- the measured boundary ------------------------------------------------------------------------


def zero_crossings(xs, ys) -> list[float]:
    """Where a sampled curve crosses 0, by linear interpolation between neighbouring samples."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    out = []
    for i in range(len(xs) - 1):
        a, b = ys[i], ys[i + 1]
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        if a == 0:
            out.append(float(xs[i]))
        elif a * b < 0:
            out.append(float(xs[i] + (xs[i + 1] - xs[i]) * a / (a - b)))
    if len(ys) and ys[-1] == 0:
        out.append(float(xs[-1]))
    return out


def measured_boundary(table: pd.DataFrame, along: str, other: str | None, level: float = 0.0) -> pd.DataFrame:
    """The first crossing of the seed-mean lambda_1 through ``level`` (log10 per step; 0: the zero
    contour) along ``along``, for each value of ``other`` (NaN where it does not cross)."""
    if "lyapunov" not in table:
        raise ValueError("measured_boundary needs the lyapunov measure in the table")
    rows = []
    groups = [(None, table)] if other is None else table.groupby(other, sort=True)
    for key, part in groups:
        s = summarise(part, [along], "lyapunov")
        cross = zero_crossings(s[along], s["mean"] - level)
        rows.append({other or "_": key, along: cross[0] if cross else float("nan")})
    frame = pd.DataFrame(rows)
    return frame.drop(columns="_") if other is None else frame


# -- theory on the grid ----------------------------------------------------------------------------

GAIN_AXES = ("gain", "spectral_radius")  # spectral_radius stands for g by the circular law (rho -> g)


@dataclass
class TheoryLine:
    """The mean-field boundary chi_1 = 1 in the sweep's coordinates, or why there is none."""

    gain_axis: str | None  # the axis the boundary is a value of
    other_axis: str | None  # the axis it is drawn along (None: one value)
    frame: pd.DataFrame | None  # columns other_axis (if any) and gain_axis
    reason: str | None = None  # why no line (theory does not apply)


def theory_line(spec: SweepSpec, samples: int = 25) -> TheoryLine:
    from . import theory

    b = spec.base
    why = theory.applies(b.cell, b.activation, b.init, b.task)
    names = [a.name for a in spec.axes]
    gain_axes = [n for n in names if n in GAIN_AXES and not (n == "gain" and b.spectral_radius > 0)]
    if why is None and not gain_axes:
        why = "the mean-field line is a gain; sweep gain (or spectral_radius) on one axis to see it"
    if why is None and len(gain_axes) == 2:
        why = "gain and spectral_radius on both axes: the spectral radius overrides the gain"
    if why is not None:
        return TheoryLine(None, None, None, why)
    gain_axis = gain_axes[0]
    other = next((a for a in spec.axes if a.name != gain_axis), None)
    if other is None:
        frame = pd.DataFrame(
            {gain_axis: [theory.boundary_gain(*theory.sweep_variances(spec.input_scale, spec.bias_scale))]}
        )
        return TheoryLine(gain_axis, None, frame)
    values = np.linspace(other.start, other.stop, samples if other.name not in INT_AXES else other.count)
    gains = []
    for v in values:
        scales = {"input_scale": spec.input_scale, "bias_scale": spec.bias_scale}
        if other.name in scales:
            scales[other.name] = float(v)
        gains.append(theory.boundary_gain(*theory.sweep_variances(scales["input_scale"], scales["bias_scale"])))
    return TheoryLine(gain_axis, other.name, pd.DataFrame({other.name: values, gain_axis: gains}))


def theory_distance(table: pd.DataFrame, line: TheoryLine) -> dict | None:
    """How far the measured boundary (seed-mean lambda_1 = 0, first crossing along the gain axis) lies
    from the mean-field one: mean and largest |difference| in gain over the rows where both exist."""
    if line.frame is None or "lyapunov" not in table:
        return None
    measured = measured_boundary(table, line.gain_axis, line.other_axis)
    if line.other_axis is None:
        theory_g = np.full(len(measured), float(line.frame[line.gain_axis].iloc[0]))
    else:
        theory_g = np.interp(measured[line.other_axis], line.frame[line.other_axis], line.frame[line.gain_axis])
    diff = np.abs(measured[line.gain_axis].to_numpy() - theory_g)
    ok = np.isfinite(diff)
    if not ok.any():
        return {"rows": 0, "mean": math.nan, "max": math.nan, "measured": measured}
    return {"rows": int(ok.sum()), "mean": float(diff[ok].mean()), "max": float(diff[ok].max()), "measured": measured}


# -- the edge of chaos ----------------------------------------------------------------------------


@dataclass
class Edge:
    gain: float  # where lambda_1 crosses 0
    lyapunov: float  # lambda_1 there, log10 per step
    steps: int  # bisection steps taken (each an exact lambda_1)
    bracket: tuple[float, float]  # final bracket [gain with lambda_1 < 0, gain with lambda_1 > 0]


def lyapunov_at(net: Network, burn_in: int = 0) -> float:
    """lambda_1 (log10 per step) of one network, exactly as the Spectrum page computes it."""
    with torch.no_grad():
        return measure_networks([net], ("lyapunov",), burn_in=burn_in)[0]["lyapunov"]


def edge_of_chaos(net: Network, lo: float = 0.1, hi: float = 4.0, tol: float = 1e-3, max_steps: int = 60) -> Edge:
    """The gain where lambda_1 crosses 0 for this network's cell, input and seed, by bisection.

    Every step computes lambda_1 exactly at the midpoint; stops once |lambda_1| <= ``tol`` (log10
    per step) or the bracket is 1e-9 wide. ValueError when lambda_1 has the same sign at both ends."""
    if net.cfg.spectral_radius > 0:
        raise ValueError("spectral_radius must be 0 for the edge finder: it varies the gain, which a set rho overrides")
    check_float("lo", lo, 0.0, MAX_GAIN, lo_open=True)
    check_float("hi", hi, lo, MAX_GAIN, lo_open=True)
    check_float("tol", tol, 0.0, 1.0, lo_open=True)

    def lam(g):
        return lyapunov_at(replace(net, cfg=replace(net.cfg, gain=g)))

    f_lo, f_hi = lam(lo), lam(hi)
    if not (f_lo < 0 < f_hi):
        raise ValueError(
            f"gain: lambda_1 does not cross 0 between gain {lo:g} ({f_lo:+.4g}) and {hi:g} ({f_hi:+.4g}) "
            "log10 per step; widen the range"
        )
    best = (lo, f_lo) if abs(f_lo) < abs(f_hi) else (hi, f_hi)
    steps = 0
    while steps < max_steps and abs(best[1]) > tol and hi - lo > 1e-9:
        mid = 0.5 * (lo + hi)
        f = lam(mid)
        steps += 1
        if abs(f) < abs(best[1]):
            best = (mid, f)
        if f < 0:
            lo = mid
        else:
            hi = mid
    return Edge(best[0], best[1], steps, (lo, hi))


# -- sweep files ----------------------------------------------------------------------------------

MAX_SWEEP_FILE_BYTES = 50 * 2**20


@dataclass
class SweepFile:
    """A table written by ``python -m bptt_core sweep``: its axes (in --x, --y order) and measures."""

    table: pd.DataFrame
    axes: list[str]
    measures: list[str]


def read_sweep_csv(data: bytes, name: str = "sweep.csv") -> SweepFile:
    """Read and check a sweep.csv: axis columns, then ``seed``, then measure columns (ValueError
    naming what is wrong)."""
    import io

    if len(data) > MAX_SWEEP_FILE_BYTES:
        raise ValueError(f"{name}: {len(data) / 2**20:.1f} MiB is over the {MAX_SWEEP_FILE_BYTES >> 20} MiB limit")
    try:
        table = pd.read_csv(io.BytesIO(data), float_precision="round_trip")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ValueError(f"{name}: not a CSV table ({type(e).__name__})") from None
    cols = list(table.columns)
    if "seed" not in cols:
        raise ValueError(f"{name}: no 'seed' column; a sweep table has the axis settings, seed, then the measures")
    k = cols.index("seed")
    axes, measures = cols[:k], cols[k + 1 :]
    if not 1 <= len(axes) <= 2 or any(a not in AXES for a in axes):
        raise ValueError(f"{name}: the columns before 'seed' must be one or two of {', '.join(AXES)}; got {axes}")
    bad = [m for m in measures if m not in MEASURES]
    if bad or not measures:
        raise ValueError(f"{name}: the columns after 'seed' must be measures ({', '.join(MEASURES)}); got {measures}")
    if len(table) > MAX_SWEEP_NETWORKS:
        raise ValueError(f"{name}: {len(table)} rows is over the limit of {MAX_SWEEP_NETWORKS}")
    for c in cols:
        if not pd.api.types.is_numeric_dtype(table[c]):
            raise ValueError(f"{name}: column {c!r} must hold numbers")
    if table[axes + ["seed"]].isna().any().any() or not np.isfinite(table[axes].to_numpy(float)).all():
        raise ValueError(f"{name}: the axis and seed columns must be finite numbers in every row")
    if table.duplicated(axes + ["seed"]).any():
        raise ValueError(f"{name}: a grid point and seed appears twice")
    return SweepFile(table, axes, measures)


# -- what the Phase diagram page asks of a grid ----------------------------------------------------


def whole_count(name: str, lo, hi, points: int) -> int:
    """For hidden units and sequence length, the most points (up to ``points``) with whole-number steps."""
    if name not in INT_AXES or lo == hi:
        return points if lo != hi else 1
    span = abs(int(hi) - int(lo))
    return next(c for c in range(min(points, span + 1), 1, -1) if span % (c - 1) == 0)


def selected_point(event, axes):
    """The axis values of the clicked point, or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event is not None else []
    if not points:
        return None
    p = points[0]
    out = {axes[0]: p.get("x")}
    if len(axes) > 1:
        out[axes[1]] = p.get("y")
    if any(v is None for v in out.values()):
        return None
    return {k: int(round(v)) if k in INT_AXES else float(v) for k, v in out.items()}
