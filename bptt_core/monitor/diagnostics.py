"""The heavy diagnostics of one logged step of GradientFlowMonitor (docs/design.md, "monitor"): pure
functions of the step's weights and first sequence, the same numbers wherever they run (in the
training loop, a thread, or the worker process of :mod:`bptt_core.monitor.worker`).

The exact gradient-flow matrix (:func:`bptt_core.flow.jacobians.jacobian_log_norms`) with its decay rate
and memory horizon; ||dL/dh_t|| in total, the watched gradient carried back through the exact step
Jacobians; the top Lyapunov exponents (Benettin et al. 1980's QR method); rho and sigma_1 of each
layer's recurrent matrix (Pascanu, Mikolov & Bengio 2013).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bptt_core.flow.jacobians import jacobian_log_norms, step_jacobians
from bptt_core.flow.spectra import lyapunov_exponents, spectrum
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.models.recurrent import cell_kind, cell_view


def layer_module(rnn: nn.Module, layer: int) -> nn.Module:
    """An equivalent single-layer, time-major module holding layer ``layer``'s weights (a copy)."""
    L = getattr(rnn, "num_layers", 1)
    if not -L <= layer < L:
        raise ValueError(f"layer must be in [{-L}, {L - 1}], got {layer}")
    layer %= L
    if L == 1 and not getattr(rnn, "batch_first", False):
        return rnn
    kind = cell_kind(rnn)
    W_ih = getattr(rnn, f"weight_ih_l{layer}")
    H, I = rnn.hidden_size, W_ih.shape[1]
    bias = getattr(rnn, "bias", True)
    if kind == "rnn":
        one = nn.RNN(I, H, nonlinearity=rnn.nonlinearity, bias=bias)
    else:
        one = (nn.LSTM if kind == "lstm" else nn.GRU)(I, H, bias=bias)
    one = one.to(dtype=W_ih.dtype, device=W_ih.device)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if hasattr(one, f"{name}_l0"):
                getattr(one, f"{name}_l0").copy_(getattr(rnn, f"{name}_l{layer}"))
    return one


def total_state_gradient_norms(J: torch.Tensor, g: torch.Tensor, h: slice) -> np.ndarray:
    """||dL/dh_t|| in total for every t, from the direct gradients g (T, H) at the output h_t.

    Backpropagation through time on the exact step Jacobians J (T, S, S), J[t] = d state_t / d state_{t-1}:
    delta_t = g_t (in the h rows ``h``) + J[t+1]^T delta_{t+1}; the norm of delta_t's h part.
    """
    T, S, _ = J.shape
    delta = J.new_zeros(S)  # (S,)
    out = np.empty(T)
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            delta = J[t + 1].T @ delta
        delta[h] += g[t]
        out[t] = float(delta[h].norm())
    return out


# -- the heavy diagnostics: a pure function, run in the loop, a thread or the worker process -------


@dataclass(frozen=True)
class HeavySpec:
    """What the heavy diagnostics need to know besides the weights and the sequence."""

    kind: str  # cell kind: rnn, lstm, gru, lru, mingru, minlstm, ssm
    hidden_size: int
    num_layers: int
    state_size: int  # every layer's state: (h, c) for an LSTM
    norm: str | int  # of the flow matrix: "fro" or 2
    n_exponents: int  # top Lyapunov exponents kept
    memory_threshold: float  # memory horizon: first lag below this fraction of lag 0
    strict: bool  # raise the first failure instead of reporting it


def heavy_diagnostics(rnn: nn.Module, x, h0, grad, spec: HeavySpec) -> tuple[tuple[dict, dict], list]:
    """((scalars, arrays), problems) of one logged step: the flow matrix with its decay rate and memory
    horizon, ||dL/dh_t|| in total (``grad``: dL/d output, or None), the top Lyapunov exponents and
    each layer's spectrum. A failed diagnostic is one (what, message) problem, or raised when strict.
    Pure: the same numbers whether it runs in the loop, a thread or the worker process."""
    problems: list[tuple[str, str]] = []

    def attempt(what: str, fn):
        try:
            return fn()
        except Exception as e:
            if spec.strict:
                raise
            problems.append((what, str(e)))
            return None

    nan = math.nan
    rec = {"decay_rate": nan, "memory_horizon": nan, "lyapunov_top": nan, "flow_min": nan, "flow_max": nan}
    arrays: dict[str, np.ndarray] = {}
    if x is None:
        problems.append(("flow", "the recurrent module's input was not seen on this step: no flow matrix"))
    else:
        L = attempt("flow", lambda: jacobian_log_norms(rnn, x, h0, norm=spec.norm))
        if L is not None:
            arrays["flow"] = L
            rec |= flow_scalars(L, spec.memory_threshold)
        if grad is not None:
            tot = attempt("dl_dh_total", lambda: _total_grads(rnn, x, h0, grad, spec))
            if tot is not None:
                arrays["dl_dh_total"] = tot
        n_exp = min(spec.state_size, spec.n_exponents)
        lam = attempt("lyapunov", lambda: lyapunov_exponents(rnn, x, h0, n_exponents=n_exp) / math.log(10))
        if lam is not None:
            arrays["lyapunov"] = lam
            rec["lyapunov_top"] = float(lam[0])
    rec |= _spectra(rnn, spec, arrays, attempt)
    return (rec, arrays), problems


def flow_scalars(L: np.ndarray, threshold: float) -> dict:
    """The scalars read off one flow matrix: decay rate, memory horizon, finite range."""
    fin = L[np.isfinite(L)]
    hz = memory_horizon(L, threshold) if L.shape[0] > 1 else None
    return {
        "decay_rate": decay_rate(L),
        "flow_min": float(fin.min()) if fin.size else math.nan,
        "flow_max": float(fin.max()) if fin.size else math.nan,
        "memory_horizon": float(hz) if hz is not None else math.nan,
    }


def _total_grads(rnn: nn.Module, x: torch.Tensor, h0, grad: torch.Tensor, spec: HeavySpec) -> np.ndarray | None:
    """||dL/dh_t|| in total (through the recurrence) from the gradient at the watched output."""
    if spec.kind == "lru":
        return None  # the LRU's output is C h + D x, not h: the watched gradient is not dL/dh
    view = cell_view(rnn)
    top = view.layer_slice(view.num_layers - 1).start if hasattr(view, "layer_slice") else 0
    J = step_jacobians(rnn, x, h0)  # (T, S, S) float64
    return total_state_gradient_norms(J, grad.to(torch.float64), slice(top, top + spec.hidden_size))


def _spectra(rnn: nn.Module, spec: HeavySpec, arrays: dict, attempt) -> dict:
    out = {"rho": math.nan, "sigma1": math.nan}
    classic = spec.kind in ("rnn", "lstm", "gru")
    for layer in range(spec.num_layers):
        one = (lambda layer=layer: layer_module(rnn, layer)) if classic else (lambda: rnn)
        sp = attempt(f"spectrum (layer {layer})", lambda one=one: spectrum(one()))
        if sp is None:
            continue
        arrays[f"eigenvalues_l{layer}"] = sp.eigenvalues
        arrays[f"singular_values_l{layer}"] = sp.singular_values
        out[f"rho_l{layer}"], out[f"sigma1_l{layer}"] = sp.rho, sp.sigma1
        if layer == spec.num_layers - 1:  # the scalar tags describe the layer the matrix is of
            out["rho"], out["sigma1"] = sp.rho, sp.sigma1
            arrays["gamma"] = np.float64(sp.gamma)
    return out
