"""Full and truncated backpropagation through time, real-time recurrent learning, per-step terms.

All gradients here are of one loss, the squared error of a linear readout summed over the chosen
steps, L = sum_{t in mask} sum_j (yhat_{t,j} - y_{t,j})^2 with yhat_t = W_y h_t + b_y, taken with the
parameters held fixed while the sequence is processed, so each method returns one estimate of dL/dtheta
aligned with ``[*rnn.parameters(), *readout.parameters()]``.

- Full BPTT: one forward over the whole sequence with the module itself, one backward.
- TBPTT(k1, k2): Williams & Peng (1990), "An efficient gradient-based algorithm for on-line training
  of recurrent network trajectories", their BPTT(h; h') with h = k2 (how far back gradients flow) and
  h' = k1 (how often an update happens). Updates at tau = k1, 2k1, ... and at n when k1 does not
  divide n (1-indexed). Update tau injects the losses of steps tau_prev+1 .. tau; gradients flow
  through h_{tau-k2+1} .. h_tau only, the state before (h_{tau-k2}, or h_0; (h, c) for an LSTM) is a
  constant. Losses before tau-k2+1 (k2 < k1) reach only the readout. The estimate is the sum over
  updates. Each update re-runs the module over its window from the constant state, which is the
  same arithmetic as a streaming implementation that keeps the last k2 steps of graph.
- RTRL: Williams & Zipser (1989), "A learning algorithm for continually running fully recurrent
  neural networks". Forward-mode sensitivities P_t = dh_t/dtheta = J_t P_{t-1} + d+h_t/dtheta are
  carried along, so memory does not grow with n and the gradient equals full BPTT's.
- Per-step contributions: dl_t/dW = sum_{i <= t} dl_t/dh_t . dh_t/dh_i . d+h_i/dW, the term for
  step i being the gradient with respect to a copy of W used at step i only.
"""

from __future__ import annotations

import math
import numbers
import statistics
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev

from bptt_core.config import check_int
from bptt_core.flow.unroll import Unroll
from bptt_core.models.arguments import as_real_tensor, check_module, effective_weights, finite_as, plain_copy
from bptt_core.models.recurrent import CellView, activation, activation_derivative, cell_view

from .memory import saved_tensor_bytes

if TYPE_CHECKING:  # pandas is optional (the dashboard, figures and sweep extras): compare_variants imports it
    import pandas as pd

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None

RTRL_MAX_SENSITIVITY_BYTES = 512 * 2**20  # the sensitivity matrices of RTRL grow as S * P (H^3 for a vanilla RNN)
RTRL_COMPARE_MAX_FLOPS = 5e9  # compare_variants skips RTRL (with a note) above this: ~1-5 s a call on 2 cores
MAX_CONTRIBUTION_BYTES = 512 * 2**20  # (t + 1) copies of one parameter's gradient

# module parameter name -> CellView field
_VIEW_FIELDS = {"weight_ih_l0": "W_ih", "weight_hh_l0": "W_hh", "bias_ih_l0": "b_ih", "bias_hh_l0": "b_hh"}


# -- checked inputs ------------------------------------------------------------------------------
@dataclass
class Problem:
    """The checked inputs of one gradient computation, in the model's dtype, batch-shaped."""

    x: torch.Tensor  # (n, B, I)
    y: torch.Tensor  # (n, B, O)
    mask: torch.Tensor  # (n,) bool, the steps whose loss counts
    view: CellView  # the module's weights, detached, in its dtype
    params: list[torch.Tensor]  # [*rnn.parameters(), *readout.parameters()]

    @property
    def n(self) -> int:
        return self.x.shape[0]


def _as_batch(name: str, v, size: int, size_name: str, dtype: torch.dtype) -> torch.Tensor:
    v = as_real_tensor(name, v)
    if v.dim() == 2:
        v = v[:, None]  # (n, 1, size)
    if v.dim() != 3 or v.shape[-1] != size:
        raise ValueError(f"{name} must have shape (n, {size_name}) = (n, {size}), got {tuple(v.shape)}")
    if v.shape[0] < 1:
        raise ValueError(f"{name} must have at least 1 time step (n >= 1)")
    return finite_as(name, v, dtype)  # finite in the dtype it is used in


def _check_mask(loss_mask, n: int) -> torch.Tensor:
    if loss_mask is None:
        return torch.ones(n, dtype=torch.bool)
    mask = as_real_tensor("loss_mask", loss_mask)
    if mask.shape != (n,):
        raise ValueError(f"loss_mask must have shape (n,) = ({n},), got {tuple(mask.shape)}")
    mask = mask.to(torch.bool)
    if not mask.any():
        raise ValueError("loss_mask must select at least one time step")
    return mask


def prepare(rnn: nn.Module, readout: nn.Module, x, y, loss_mask=None) -> Problem:
    """Check the model and data once; every function here starts from this."""
    check_module(rnn)
    dtype = next(rnn.parameters()).dtype
    view = cell_view(rnn, dtype=dtype)  # refuses stacked, bidirectional, batch_first, unknown modules
    if not isinstance(readout, nn.Linear):
        raise ValueError(f"readout must be a torch.nn.Linear, got {type(readout).__name__}")
    check_module(readout, "readout")
    if readout.in_features != view.hidden_size:
        raise ValueError(f"readout in_features must equal hidden_size={view.hidden_size}, got {readout.in_features}")
    if readout.weight.dtype != dtype:
        raise ValueError(f"readout dtype must equal the recurrent module's ({dtype}), got {readout.weight.dtype}")
    x = _as_batch("x", x, view.input_size, "input_size", dtype)
    y = _as_batch("y", y, readout.out_features, "output_size", dtype)
    if y.shape[:2] != x.shape[:2]:
        raise ValueError(f"y must have the same length (and batch) as x: x is {tuple(x.shape)}, y is {tuple(y.shape)}")
    mask = _check_mask(loss_mask, x.shape[0])
    return Problem(x=x, y=y, mask=mask, view=view, params=[*rnn.parameters(), *readout.parameters()])


# -- shared pieces -----------------------------------------------------------------------------
def _detach(state: State) -> State:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _loss(readout: nn.Linear, h: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Squared error summed over the masked steps: h (T, B, H), y (T, B, O), mask (T,)."""
    idx = mask.nonzero()[:, 0]
    return ((readout(h[idx]) - y[idx]) ** 2).sum()


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    if not loss.requires_grad:  # nothing to differentiate (no loss step in this update)
        return [torch.zeros_like(p) for p in params]
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs, strict=True)]


def flat(grads: list[torch.Tensor]) -> torch.Tensor:
    """All gradients as one vector (the cosine and relative norm compare these)."""
    return torch.cat([g.reshape(-1) for g in grads])


def _run(rnn: nn.Module, x: torch.Tensor, state: State, params: dict | None = None):
    """The module's own forward on time-major x (n, B, I), returning time-major output: a
    ``batch_first`` module is handed (B, n, I) and its output turned back."""
    bf = getattr(rnn, "batch_first", False)
    xin = x.transpose(0, 1) if bf else x
    out, state = rnn(xin, state) if params is None else functional_call(rnn, params, (xin, state))
    return (out.transpose(0, 1) if bf else out), state


# -- full BPTT ---------------------------------------------------------------------------------
def _full_loss(rnn: nn.Module, readout: nn.Linear, p: Problem) -> torch.Tensor:
    out, _ = _run(rnn, p.x, None)  # (n, B, H): the module's own forward, so gradients are w.r.t. its parameters
    return _loss(readout, out, p.y, p.mask)


def bptt_gradients(rnn: nn.Module, readout: nn.Linear, x, y, loss_mask=None) -> list[torch.Tensor]:
    """Full-BPTT gradient of L, aligned with ``[*rnn.parameters(), *readout.parameters()]``.

    x (n, input_size) or (n, B, input_size), y (n, output_size) or (n, B, output_size); loss_mask
    (n,) bool selects the steps whose loss counts (default: all).
    """
    p = prepare(rnn, readout, x, y, loss_mask)
    return _grads(_full_loss(rnn, readout, p), p.params)


# -- TBPTT(k1, k2) -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    """One TBPTT update. ``tau`` is 1-indexed as in the paper; the ranges are 0-indexed steps."""

    tau: int  # the update happens after consuming x_1 .. x_tau
    loss_steps: range  # steps tau_prev+1 .. tau (0-indexed: tau_prev .. tau-1) whose losses it injects
    window: range  # states h_{tau-k2+1} .. h_tau (0-indexed) that gradients flow through


def check_truncation(n: int, k1, k2) -> tuple[int, int]:
    """k1 and k2 must be whole numbers in [1, n]."""
    n = check_int("n (sequence length)", n, 1, 10**9)
    return check_int("k1", k1, 1, n), check_int("k2", k2, 1, n)


def tbptt_schedule(n: int, k1: int, k2: int) -> list[Update]:
    """The updates of TBPTT(k1, k2) on a sequence of n steps (Williams & Peng 1990)."""
    k1, k2 = check_truncation(n, k1, k2)
    taus = list(range(k1, n + 1, k1))
    if n % k1:
        taus.append(n)  # the final partial update, which also looks back k2 steps
    prev = [0, *taus[:-1]]
    return [Update(tau, range(a, tau), range(max(0, tau - k2), tau)) for a, tau in zip(prev, taus, strict=True)]


def tbptt_backward_steps(n: int, k1: int, k2: int) -> int:
    """Steps back-propagated through over one sequence (the sum of the window lengths): n for full
    BPTT and k1 = k2, about n * k2 / k1 in general, n(n+1)/2 for (1, n). Lets a caller refuse early."""
    return sum(len(u.window) for u in tbptt_schedule(n, k1, k2))


def tbptt_kept_mask(n: int, k1: int, k2: int) -> np.ndarray:
    """(n, n) bool: True at [t, s] (0-indexed, s <= t) when dl_t/dh_s survives TBPTT(k1, k2).

    The loss l_t is injected at the first update tau >= t and flows back only through that update's
    window, so [t, s] is kept iff window.start <= s <= t.
    """
    keep = np.zeros((n, n), dtype=bool)
    for u in tbptt_schedule(n, k1, k2):
        for t in u.loss_steps:
            keep[t, u.window.start : t + 1] = True
    return keep


def _window_starts(rnn: nn.Module, p: Problem, starts: list[int]) -> tuple[dict[int, State], torch.Tensor]:
    """One no-grad forward: the state before each requested step, and every h_t (n, B, H)."""
    bounds = sorted({0, p.n, *starts})
    states: dict[int, State] = {0: None}
    outs = []
    state: State = None
    with torch.no_grad():
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            out, state = _run(rnn, p.x[a:b], state)
            states[b] = state
            outs.append(out)
    return states, torch.cat(outs)


def _update_loss(rnn, readout, p: Problem, u: Update, start: State, h_all: torch.Tensor) -> torch.Tensor:
    """The loss one update differentiates: its window re-run from the constant state before it."""
    w0, tau = u.window.start, u.window.stop
    a = u.loss_steps.start
    loss = p.x.new_zeros(())
    inside = p.mask[w0:tau] & (torch.arange(w0, tau) >= a)  # losses whose gradient reaches the recurrence
    if inside.any():
        out, _ = _run(rnn, p.x[w0:tau].clone(), _detach(start))  # (k2, B, H); clone: hold the window, not all of x
        loss = loss + _loss(readout, out, p.y[w0:tau], inside)
    if a < w0 and p.mask[a:w0].any():  # losses before the window: constants for the recurrence
        loss = loss + _loss(readout, h_all[a:w0].clone(), p.y[a:w0], p.mask[a:w0])
    return loss


def tbptt_gradients(rnn: nn.Module, readout: nn.Linear, x, y, k1: int, k2: int, loss_mask=None) -> list[torch.Tensor]:
    """The TBPTT(k1, k2) estimate of dL/dtheta (sum over updates), aligned like :func:`bptt_gradients`.

    TBPTT(n, n) is full BPTT; TBPTT(k, k) with k dividing n is the chunk-and-detach loop; (1, n) is
    Williams & Peng's real-time BPTT; (k1, 1) lets only the last step of each update see its loss.
    """
    p = prepare(rnn, readout, x, y, loss_mask)
    updates = tbptt_schedule(p.n, k1, k2)
    starts, h_all = _window_starts(rnn, p, [u.window.start for u in updates])
    total = [torch.zeros_like(q) for q in p.params]
    for u in updates:
        grads = _grads(_update_loss(rnn, readout, p, u, starts[u.window.start], h_all), p.params)
        for acc, g in zip(total, grads, strict=True):
            acc += g
    return total


def held_for_backward_bytes(rnn: nn.Module, readout: nn.Linear, x, y, k1=None, k2=None, loss_mask=None) -> int:
    """Bytes autograd holds for one backward (the largest update), parameters excluded.

    k1 = k2 = None: full BPTT. Measured with ``saved_tensors_hooks``.
    """
    p = prepare(rnn, readout, x, y, loss_mask)
    exclude = p.params
    if k1 is None and k2 is None:
        return saved_tensor_bytes(lambda: _full_loss(rnn, readout, p), exclude=exclude)
    updates = tbptt_schedule(p.n, k1, k2)

    def size(u: Update) -> tuple[bool, int, int, int]:  # the largest graph: a window that runs, its losses
        inside = int(p.mask[max(u.window.start, u.loss_steps.start) : u.tau].sum())
        before = int(p.mask[u.loss_steps.start : u.window.start].sum())
        return inside > 0, len(u.window), inside, before

    u = max(updates, key=size)
    starts, h_all = _window_starts(rnn, p, [u.window.start])
    return saved_tensor_bytes(lambda: _update_loss(rnn, readout, p, u, starts[u.window.start], h_all), exclude=exclude)


# -- RTRL ---------------------------------------------------------------------------------------
def _rtrl_setup(rnn: nn.Module, readout: nn.Linear, x, y, loss_mask) -> Problem:
    p = prepare(rnn, readout, x, y, loss_mask)
    if getattr(p.view, "num_layers", 1) != 1:
        raise ValueError(
            f"RTRL here takes single-layer models: num_layers must be 1, got {p.view.num_layers} "
            "(use bptt_gradients or tbptt_gradients for a stack)"
        )
    if p.x.shape[1] != 1:
        raise ValueError(f"RTRL here takes one sequence: x must be (n, input_size), got batch {p.x.shape[1]}")
    need = rtrl_sensitivity_bytes(p.view)
    if need > RTRL_MAX_SENSITIVITY_BYTES:
        raise ValueError(
            f"hidden_size={p.view.hidden_size} too large for RTRL: its sensitivity matrices need {need / 2**20:.0f} MiB, "
            f"the limit is {RTRL_MAX_SENSITIVITY_BYTES / 2**20:.0f} MiB"
        )
    return p


def rtrl_sensitivity_bytes(view: CellView) -> int:
    """Bytes of the matrices dh_t/dtheta that RTRL carries: independent of the sequence length.

    Vanilla: d h/d W_ih (H, H, I), d h/d W_hh (H, H, H) and one (H, H) for both biases (they enter
    identically). Gated cells: one (S, P) matrix over all recurrent parameters.
    """
    H, I, S = view.hidden_size, view.input_size, view.state_size
    if hasattr(view, "module"):  # a diagonal cell: one (S, P) matrix over all its parameters
        return S * sum(q.numel() * q.element_size() for q in view.module.parameters())
    item = view.W_hh.element_size()
    if view.kind == "rnn":
        return item * H * H * (I + H + 1)
    return item * S * (view.W_ih.numel() + view.W_hh.numel() + view.b_ih.numel() + view.b_hh.numel())


def rtrl_memory_bytes(rnn: nn.Module) -> int:
    """Bytes of RTRL's sensitivity matrices for this model, in its dtype (the same for every n)."""
    return rtrl_sensitivity_bytes(cell_view(rnn, dtype=next(rnn.parameters()).dtype))


def rtrl_flops(view: CellView, n: int) -> float:
    """Floating-point operations of the sensitivity recurrence J_t P_{t-1} over n steps (its dominant cost)."""
    S = view.state_size
    item = next(view.module.parameters()).element_size() if hasattr(view, "module") else view.W_hh.element_size()
    n_params = rtrl_sensitivity_bytes(view) // (item * S)  # columns of P
    return 2.0 * n * S * S * n_params


def rtrl_gradients(rnn: nn.Module, readout: nn.Linear, x, y, loss_mask=None) -> list[torch.Tensor]:
    """dL/dtheta by real-time recurrent learning (Williams & Zipser 1989), equal to full BPTT.

    Vanilla RNNs (ElmanRNN with any activation, nn.RNN tanh/relu) use the hand-derived sensitivity
    recurrence; LSTM and GRU carry one (S, P) sensitivity matrix with the immediate partials from
    ``torch.func.jacrev`` and the exact step Jacobians of :class:`CellView`.
    """
    return _rtrl(rnn, readout, x, y, loss_mask)[0]


def _rtrl(rnn, readout, x, y, loss_mask) -> tuple[list[torch.Tensor], int]:
    p = _rtrl_setup(rnn, readout, x, y, loss_mask)
    Wy, by = readout.weight.detach(), (readout.bias.detach() if readout.bias is not None else None)
    xs, ys = p.x[:, 0], p.y[:, 0]  # (n, I), (n, O)
    if hasattr(p.view, "module"):
        grads, g_Wy, g_by, held = _rtrl_diagonal(rnn, p.view, xs, ys, p.mask, Wy, by)
        return grads + [g_Wy] + ([g_by] if by is not None else []), held
    step = _rtrl_vanilla if p.view.kind == "rnn" else _rtrl_gated
    g_view, g_Wy, g_by, held = step(p.view, xs, ys, p.mask, Wy, by)
    grads = _module_grads(rnn, g_view)
    grads += [g_Wy] + ([g_by] if by is not None else [])
    return grads, held


def _module_grads(rnn: nn.Module, g_view: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """dL/dtheta for ``rnn.parameters()`` from dL/d(effective weight). Plain modules: the same tensors.
    Parametrized, pruned or spectral-normed ones store other tensors (``...original``, ``weight_orig``):
    the chain rule through the weight's own computation, by autograd (a vector-Jacobian product)."""
    named = list(rnn.named_parameters())
    if all(name in _VIEW_FIELDS for name, _ in named):
        return [g_view[_VIEW_FIELDS[name]] for name, _ in named]
    with torch.enable_grad():
        eff = {k: w for k, w in effective_weights(rnn).items() if w.requires_grad}
        params = [q for _, q in named]
        gs = torch.autograd.grad(
            list(eff.values()), params, [g_view[_VIEW_FIELDS[k]].to(w.dtype) for k, w in eff.items()], allow_unused=True
        )
    return [torch.zeros_like(q) if g is None else g for q, g in zip(params, gs, strict=True)]


def _readout_error(Wy, by, h, y_t):
    yhat = h @ Wy.T + (by if by is not None else 0)
    return 2 * (yhat - y_t)  # dl_t/dyhat_t, (O,)


def _rtrl_vanilla(v: CellView, xs, ys, mask, Wy, by):
    H, I = v.hidden_size, v.input_size
    P_ih = xs.new_zeros(H, H, I)  # [k, i, j] = dh[k] / dW_ih[i, j]
    P_hh = xs.new_zeros(H, H, H)  # [k, i, j] = dh[k] / dW_hh[i, j]
    P_b = xs.new_zeros(H, H)  # [k, i] = dh[k] / db[i], the same for b_ih and b_hh
    g = {"W_ih": torch.zeros_like(v.W_ih), "W_hh": torch.zeros_like(v.W_hh), "b": xs.new_zeros(H)}
    g_Wy, g_by = torch.zeros_like(Wy), Wy.new_zeros(Wy.shape[0])
    h = xs.new_zeros(H)
    diag = torch.arange(H)
    for t in range(xs.shape[0]):
        a = v.W_ih @ xs[t] + v.b_ih + v.W_hh @ h + v.b_hh  # (H,)
        d = activation_derivative(v.activation, a)[:, None]  # (H, 1): diag(phi'(a_t))
        # P_t = diag(phi'(a_t)) (W_hh P_{t-1} + d+a_t/dtheta); d+a_t[k]/dW[i, j] = delta_ki * input[j]
        P_hh = (v.W_hh @ P_hh.reshape(H, H * H)).reshape(H, H, H)
        P_hh[diag, diag] += h
        P_hh *= d[:, :, None]
        P_ih = (v.W_hh @ P_ih.reshape(H, H * I)).reshape(H, H, I)
        P_ih[diag, diag] += xs[t]
        P_ih *= d[:, :, None]
        P_b = d * (v.W_hh @ P_b + torch.eye(H, dtype=xs.dtype))
        h = activation(v.activation, a)
        if mask[t]:
            e = _readout_error(Wy, by, h, ys[t])  # (O,)
            gh = e @ Wy  # (H,) dl_t/dh_t
            g["W_hh"] += torch.tensordot(gh, P_hh, 1)
            g["W_ih"] += torch.tensordot(gh, P_ih, 1)
            g["b"] += gh @ P_b
            g_Wy += torch.outer(e, h)
            g_by += e
    held = (P_ih.numel() + P_hh.numel() + P_b.numel()) * P_hh.element_size()
    return {"W_ih": g["W_ih"], "W_hh": g["W_hh"], "b_ih": g["b"], "b_hh": g["b"].clone()}, g_Wy, g_by, held


def _rtrl_gated(v: CellView, xs, ys, mask, Wy, by):
    H, S = v.hidden_size, v.state_size
    names = ("W_ih", "W_hh", "b_ih", "b_hh")
    theta = {k: getattr(v, k) for k in names}

    def step(th, x_t, s):  # one step as a function of the weights: (S,)
        return replace(v, **th).step(x_t[None], s[None])[0]

    immediate = jacrev(step)  # d+s_t/dtheta at fixed s_{t-1}
    P = xs.new_zeros(S, sum(t.numel() for t in theta.values()))  # (S, P): d s_t / d theta
    g = xs.new_zeros(P.shape[1])
    g_Wy, g_by = torch.zeros_like(Wy), Wy.new_zeros(Wy.shape[0])
    s = v.initial_state(None)[0]  # (S,)
    for t in range(xs.shape[0]):
        D = immediate(theta, xs[t], s)
        D = torch.cat([D[k].reshape(S, -1) for k in names], 1)  # (S, P)
        J = v.step_jacobians(xs[t : t + 1], s[None])[0]  # (S, S)
        P = J @ P + D
        s = step(theta, xs[t], s)
        if mask[t]:
            e = _readout_error(Wy, by, s[:H], ys[t])
            g += (e @ Wy) @ P[:H]  # the loss sees h only (the first H entries of an LSTM's state)
            g_Wy += torch.outer(e, s[:H])
            g_by += e
    out, i = {}, 0
    for k in names:
        out[k] = g[i : i + theta[k].numel()].reshape(theta[k].shape)
        i += theta[k].numel()
    return out, g_Wy, g_by, P.numel() * P.element_size()


def _rtrl_diagonal(rnn: nn.Module, v, xs, ys, mask, Wy, by):
    """RTRL for a diagonal cell, whose readout reads y_t = out(x_t, s_t; theta) (the LRU's Re(C h) + D x).

    P_t = d s_t / d theta = diag(a_t) P_{t-1} + d+s_t/dtheta, carried forward. With one step of the
    module's own forward from s_{t-1} (``torch.func.jacrev`` for its immediate partials):
    dy_t/dtheta = (dy_t/ds_{t-1}) P_{t-1} + d+y_t/dtheta, both partials at fixed s_{t-1}.
    """
    names = [n for n, _ in rnn.named_parameters()]
    theta = {n: q.detach() for n, q in rnn.named_parameters()}

    def step(th, x_t, s):  # one step of the module from s: (H,) output, (S,) state
        out, h_n = functional_call(rnn, th, (x_t[None], s[None]))
        return out[0], h_n[0]

    d_theta = jacrev(step, argnums=0)
    d_prev = jacrev(lambda s, x_t: step(theta, x_t, s)[0])  # dy_t / ds_{t-1}
    S = v.state_size
    flat = lambda d, rows: torch.cat([d[n].reshape(rows, -1) for n in names], 1)  # noqa: E731
    P = xs.new_zeros(S, sum(q.numel() for q in theta.values()))  # (S, P): d s_t / d theta
    g = xs.new_zeros(P.shape[1])
    g_Wy, g_by = torch.zeros_like(Wy), Wy.new_zeros(Wy.shape[0])
    s = xs.new_zeros(S)
    for t in range(xs.shape[0]):
        Dy, Ds = d_theta(theta, xs[t], s)  # immediate partials of y_t (H, ...) and s_t (S, ...)
        y_t, s_new = step(theta, xs[t], s)
        if mask[t]:
            e = _readout_error(Wy, by, y_t, ys[t])  # (O,)
            g += (e @ Wy) @ (d_prev(s, xs[t]) @ P + flat(Dy, y_t.shape[0]))
            g_Wy += torch.outer(e, y_t)
            g_by += e
        J = v.step_jacobians(xs[t : t + 1])[0].to(xs.dtype)  # (S, S): diag(a_t), 2 x 2 blocks for the LRU
        P = J @ P + flat(Ds, S)
        s = s_new
    out, i = [], 0
    for n in names:
        out.append(g[i : i + theta[n].numel()].reshape(theta[n].shape))
        i += theta[n].numel()
    return out, g_Wy, g_by, P.numel() * P.element_size()


# -- per-step contributions --------------------------------------------------------------------
def contribution_param(rnn: nn.Module) -> str:
    """The parameter whose per-step terms the pages show: W_hh (layer 0 of a stack), or a diagonal
    cell's first parameter (the LRU's nu_log, minGRU's W_z, ...)."""
    return "weight_hh_l0" if hasattr(rnn, "weight_hh_l0") else next(n for n, _ in rnn.named_parameters())


def contributions(rnn: nn.Module, readout: nn.Linear, x, y, t: int, param: str = "weight_hh_l0") -> torch.Tensor:
    """The terms of dl_t/dW through each earlier state: (t + 1, *W.shape), summing to dl_t/dW.

    Term i = dl_t/dh_t . dh_t/dh_i . d+h_i/dW (d+ the immediate partial at step i): the gradient
    with respect to a zero added to W at step i only, the module run step by step with
    ``torch.func.functional_call``. l_t = sum_j (yhat_{t,j} - y_{t,j})^2 is the loss at step t only.
    For an LSTM dh_t/dh_i runs through the full state (h, c).
    """
    p = prepare(rnn, readout, x, y)
    if p.x.shape[1] != 1:
        raise ValueError(f"contributions take one sequence: x must be (n, input_size), got batch {p.x.shape[1]}")
    t = check_int("t", t, 0, p.n - 1)
    rnn = plain_copy(rnn)  # a parametrized, pruned or spectral-normed W: the terms of dl_t/dW for the W it computes
    named = dict(rnn.named_parameters())
    if param not in named:
        raise ValueError(f"param must be one of {', '.join(named)}; got {param!r}")
    W = named[param]
    need = (t + 1) * W.numel() * W.element_size()
    if need > MAX_CONTRIBUTION_BYTES:
        raise ValueError(
            f"t={t} too large for contributions of {param}: {t + 1} terms need {need / 2**20:.0f} MiB, "
            f"the limit is {MAX_CONTRIBUTION_BYTES / 2**20:.0f} MiB"
        )
    W0 = W.detach()
    zeros = [torch.zeros_like(W0, requires_grad=True) for _ in range(t + 1)]
    state: State = None
    for i in range(t + 1):
        out, state = _run(rnn, p.x[i : i + 1], state, {**named, param: W0 + zeros[i]})
    loss = ((readout(out[-1]) - p.y[t]) ** 2).sum()
    return torch.stack(torch.autograd.grad(loss, zeros, allow_unused=True, materialize_grads=True))  # (t+1, *W)


def contribution_norms(rnn: nn.Module, readout: nn.Linear, x, y, t: int, param: str = "weight_hh_l0") -> np.ndarray:
    """Frobenius norm of each term of :func:`contributions`: (t + 1,) float64, for a bar chart."""
    terms = contributions(rnn, readout, x, y, t, param)
    return terms.reshape(terms.shape[0], -1).norm(dim=1).double().numpy()


# -- the variants compared ---------------------------------------------------------------------
def _timed(fn, repeats: int):
    """fn's result and the (median, min, max) of ``repeats`` wall-clock times (the first call is one)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, (statistics.median(times), min(times), max(times))


def _accuracy(g: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    g, ref = g.double(), ref.double()
    nr, ng = ref.norm().item(), g.norm().item()
    cos = (g @ ref).item() / (ng * nr) if ng > 0 and nr > 0 else math.nan
    return cos, (ng / nr if nr > 0 else math.nan)


def compare_variants(
    rnn: nn.Module,
    readout: nn.Linear,
    x,
    y,
    ks=(10, 20),
    k1k2=None,
    loss_mask=None,
    repeats: int = 3,
    rtrl_max_flops: float = RTRL_COMPARE_MAX_FLOPS,
) -> pd.DataFrame:
    """Full BPTT, TBPTT(k, k) for each k in ``ks``, TBPTT(k1, k2), and RTRL, measured on this model.

    Columns: variant, k1, k2, updates, memory_bytes (held for backward at the largest update,
    parameters excluded; RTRL: its sensitivity matrices), memory_how, time_per_update_s (median of
    ``repeats`` runs of the whole gradient divided by the number of updates), time_total_s, cosine
    time_per_update_min_s / _max_s (the fastest and slowest of those runs: a few milliseconds vary),
    and relative_norm (all parameters flattened, against full BPTT), note. A k larger than n is
    skipped with a note, never clamped; TBPTT(n, n) is full BPTT and has no row of its own. Times are for the model's own dtype; a TBPTT update re-runs
    the forward over its window (k2 steps) where a streaming loop would run k1 new ones, so for
    k1 < k2 the time is an upper bound.
    """
    import pandas as pd  # optional dependency (the table this returns), imported before any work

    p = prepare(rnn, readout, x, y, loss_mask)
    n = p.n
    repeats = check_int("repeats", repeats, 1, 100)
    ks = [check_int("ks", k, 1, 10**9) for k in ((ks,) if isinstance(ks, numbers.Integral) else (ks or ()))]
    if k1k2 is not None:
        if len(k1k2) != 2:
            raise ValueError(f"k1k2 must be a pair (k1, k2), got {k1k2!r}")
        check_truncation(n, *k1k2)
    args = (rnn, readout, p.x, p.y)
    kw = {"loss_mask": p.mask}
    ref = flat(bptt_gradients(*args, **kw))
    rows = []

    def row(variant, k1, k2, grads_fn, updates, memory, how, note=""):
        grads, (total, fastest, slowest) = _timed(grads_fn, repeats)
        g = flat(grads)
        cos, rel = _accuracy(g, ref)
        ok = bool(torch.isfinite(g).all())
        rows.append(
            dict(
                variant=variant,
                k1=k1,
                k2=k2,
                updates=updates,
                memory_bytes=memory,
                memory_how=how,
                time_per_update_s=total / updates,
                time_per_update_min_s=fastest / updates,
                time_per_update_max_s=slowest / updates,
                time_total_s=total,
                cosine=cos,
                relative_norm=rel,
                note=note if ok else (note + " non-finite gradient").strip(),
            )
        )

    def skipped(variant, k1, k2, note):
        rows.append(dict(variant=variant, k1=k1, k2=k2, updates=0, memory_bytes=math.nan, memory_how="",
                         time_per_update_s=math.nan, time_per_update_min_s=math.nan, time_per_update_max_s=math.nan,
                         time_total_s=math.nan, cosine=math.nan, relative_norm=math.nan,
                         note=note))  # fmt: skip

    measured = "measured: saved_tensors_hooks"
    row("full BPTT", n, n, lambda: bptt_gradients(*args, **kw), 1, held_for_backward_bytes(*args, **kw), measured,
        f"= TBPTT({n}, {n}): one update over the whole sequence")  # fmt: skip
    notes = {(k, k): f"fixed reference window k = {k}, for scale" for k in ks}
    if k1k2 is not None:
        notes[tuple(int(k) for k in k1k2)] = "the chosen truncation"
    for (k1, k2), note in notes.items():
        name = f"TBPTT({k1}, {k2})"
        if (k1, k2) == (n, n):  # full BPTT itself: its row says so
            continue
        if max(k1, k2) > n:
            skipped(name, k1, k2, f"skipped: k={max(k1, k2)} is longer than the sequence (n={n})")
            continue
        row(
            name,
            k1,
            k2,
            lambda k1=k1, k2=k2: tbptt_gradients(*args, k1, k2, **kw),
            len(tbptt_schedule(n, k1, k2)),
            held_for_backward_bytes(*args, k1, k2, **kw),
            measured,
            note,
        )
    layers = getattr(p.view, "num_layers", 1)
    flops = rtrl_flops(p.view, n) if layers == 1 else math.nan
    if layers != 1:
        skipped("RTRL", math.nan, math.nan, f"skipped: RTRL here takes single-layer models ({layers} layers)")
    elif p.x.shape[1] != 1:
        skipped("RTRL", math.nan, math.nan, "skipped: RTRL here takes one sequence (batch 1)")
    elif flops > rtrl_max_flops or rtrl_sensitivity_bytes(p.view) > RTRL_MAX_SENSITIVITY_BYTES:
        skipped("RTRL", math.nan, math.nan, f"skipped: RTRL would cost ~{flops:.1e} flops (limit {rtrl_max_flops:.0e})")
    else:
        row(
            "RTRL",
            math.nan,
            math.nan,
            lambda: rtrl_gradients(*args, **kw),
            1,
            rtrl_sensitivity_bytes(p.view),
            "sensitivity matrices",
            "memory independent of n",
        )
    df = pd.DataFrame(rows)
    ints = {"k1": "Int64", "k2": "Int64", "updates": "Int64", "memory_bytes": "Int64"}
    return df.astype(ints)  # RTRL has no k, a skipped row no bytes: <NA>, not a float NaN


def contribution_step(T: int) -> int:
    """The loss step (0-indexed) whose per-step contributions the pages show: the last, capped at 199
    because the terms are (t + 1) copies of W_hh."""
    return T - 1 if T <= 200 else 199


def attach_contribution(u: Unroll, rnn: nn.Module, readout: nn.Linear, x, y) -> Unroll:
    """The unrolled cell ``u`` (:func:`bptt_core.flow.unroll.unroll`, from h0 = 0) with the term of
    dl_t/dW_hh that flows through h_s and every step's term's norm (:func:`contributions`); ``x`` (T, I)
    and ``y`` (T, O) as the unroll's."""
    x = as_real_tensor("x", x)
    terms = contributions(rnn, readout, x.to(next(rnn.parameters()).dtype), y, u.t, contribution_param(rnn))
    u.contribution = terms[u.s].double().numpy()  # (*W_hh)
    u.contribution_norms = terms.reshape(u.t + 1, -1).norm(dim=1).double().numpy()  # (t + 1,)
    return u
