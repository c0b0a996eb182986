"""How sensitive a linear recurrence's state is to its own eigenvalue, as |lambda| -> 1.

Zucchet & Orvieto (2024), "Recurrent neural networks: vanishing and exploding gradients are not the
end of the story": in h_t = lambda h_{t-1} + gamma B x_t, the Jacobian d h_t / d h_s = lambda^(t-s)
never explodes when |lambda| <= 1, yet the sensitivity of h_t to lambda itself,
d h_t / d|lambda| = sum_k k |lambda|^(k-1) e^(i k theta) gamma (B x)_{t-k}, grows without bound as
|lambda| -> 1: for inputs of unit variance its mean square is

    E |d h_T / d|lambda||^2 = gamma^2 ||B_j||^2 sum_{k=1}^{T-1} k^2 |lambda|^(2(k-1))
                            -> ||B_j||^2 (1 + r^2) / (1 - r^2)^2      (T -> oo, gamma = sqrt(1 - r^2)),

even with the LRU's normalisation gamma keeping E|h_T|^2 at ||B_j||^2 (1 - r^(2T)). So a loss can
become ill-conditioned in lambda while the gradient-flow matrix shows nothing exploding.

:func:`lambda_sensitivity` measures it: an LRU whose units all have modulus r (phases from the ring
initialisation) is run on Gaussian sequences, and d h_T / d nu_log is taken by forward-mode autograd
(``torch.func.jvp`` through the module's own forward; the units are independent, so one tangent of
ones gives every unit's own derivative), converted by d|lambda| / d nu_log = r ln r.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call, jvp

from bptt_core.config import check_float, check_int
from bptt_core.models.cells import LRU

DEFAULT_RADII = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
MAX_SENSITIVITY_WORK = 5e7  # radii x seq_len x sequences x hidden: the measurement's size limit


@dataclass
class LambdaSensitivity:
    radii: np.ndarray  # (R,) |lambda| of every unit, per run
    measured: np.ndarray  # (R,) mean over units and sequences of |d h_T / d|lambda||^2
    theory: np.ndarray  # (R,) its expectation, gamma^2 ||B_j||^2 sum k^2 r^(2(k-1)), averaged over units
    state_ms: np.ndarray  # (R,) mean |h_T|^2: the normalised forward pass stays O(1)
    jacobian_log10: np.ndarray  # (R,) log10 ||d h_T / d h_1|| (spectral) = (T - 1) log10 r: never above 0
    seq_len: int
    n_sequences: int


def lambda_sensitivity(
    radii=DEFAULT_RADII, seq_len: int = 300, hidden_size: int = 8, input_size: int = 4, n_sequences: int = 64,
    seed: int = 0,
) -> LambdaSensitivity:  # fmt: skip
    """The measured curve of E |d h_T / d|lambda||^2 against r = |lambda| (see the module docstring)."""
    radii = np.asarray([check_float("radius", r, 0.0, 1.0, lo_open=True) for r in radii], dtype=float)
    if len(radii) == 0 or (radii >= 1).any():
        raise ValueError("radii must be a non-empty list of numbers in (0, 1)")
    T = check_int("seq_len", seq_len, 2, 10_000)
    H, I = check_int("hidden_size", hidden_size, 1, 512), check_int("input_size", input_size, 1, 256)
    n = check_int("n_sequences", n_sequences, 1, 10_000)
    work = len(radii) * T * n * H
    if work > MAX_SENSITIVITY_WORK:
        raise ValueError(f"radii x seq_len x n_sequences x hidden_size = {work:.3g} exceeds {MAX_SENSITIVITY_WORK:.0e}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, n, I, generator=gen, dtype=torch.float64)  # (T, n, I), unit variance
    rows = [_measure(float(r), x, H, I, seed) for r in radii]
    measured, theory, state_ms = (np.array(v) for v in zip(*rows, strict=True))
    jac = (T - 1) * np.log10(radii)  # |lambda|^(T-1) on every unit: diag(lambda)^(T-1) has this 2-norm
    return LambdaSensitivity(radii, measured, theory, state_ms, jac, T, n)


def _measure(r: float, x: torch.Tensor, H: int, I: int, seed: int) -> tuple[float, float, float]:
    torch.manual_seed(seed)  # the same B and phases for every radius: only |lambda| moves
    m = LRU(I, H, r_min=0.0, r_max=1.0).double()
    with torch.no_grad():
        m.nu_log.fill_(math.log(-math.log(r)))
        m.gamma_log.fill_(0.5 * math.log1p(-(r**2)))
    params = {k: v.detach() for k, v in m.named_parameters()}

    def final_state(nu_log):
        _, h_n = functional_call(m, {**params, "nu_log": nu_log}, (x,))
        return h_n[0]  # (n, 2H): (Re h_T, Im h_T)

    h_T, d_nu = jvp(final_state, (params["nu_log"],), (torch.ones(H, dtype=torch.float64),))
    d_r = d_nu / (r * math.log(r))  # d h / d|lambda| = (d h / d nu_log) / (d|lambda| / d nu_log)
    measured = (d_r[:, :H] ** 2 + d_r[:, H:] ** 2).mean().item()  # mean over sequences and units
    state_ms = (h_T[:, :H] ** 2 + h_T[:, H:] ** 2).mean().item()
    b2 = (params["B_re"] ** 2 + params["B_im"] ** 2).sum(1)  # (H,) ||B_j||^2 = E|(B x)_j|^2
    k = torch.arange(1, x.shape[0], dtype=torch.float64)
    series = (k**2 * r ** (2 * (k - 1))).sum().item()
    theory = ((1 - r**2) * b2 * series).mean().item()
    return measured, theory, state_ms
