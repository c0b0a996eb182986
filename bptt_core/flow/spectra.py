"""Spectra of the recurrent matrix and the Lyapunov spectrum of the driven network.

Pascanu, Mikolov & Bengio (2013): with gamma the bound on |phi'| (1 for tanh, 1/4 for sigmoid),
sigma_1(W_hh) < 1/gamma is sufficient for vanishing gradients and sigma_1 > 1/gamma necessary
for exploding ones. The Lyapunov exponents (Benettin et al. 1980's QR method) are the average
log growth rates of d h_t / d h_0 along the actual trajectory: the top one is the rate at which
the gradient-flow norms grow or decay at long lags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bptt_core.models.recurrent import ACTIVATION_GAMMA, cell_view, recurrent_matrix

from .jacobians import step_jacobians
from .verdicts import gradient_verdict


@dataclass
class Spectrum:
    eigenvalues: np.ndarray  # (H,) complex
    singular_values: np.ndarray  # (H,) descending
    rho: float  # spectral radius
    sigma1: float  # largest singular value
    gamma: float  # bound on |phi'|
    matrix: str  # which matrix: "W_hh" or the gate block of a gated cell

    @property
    def bound(self) -> float:
        """1/gamma: sigma_1 below it guarantees vanishing; above it is needed to explode."""
        return 1.0 / self.gamma

    def verdict(self, plain: bool = True, rate: float | None = None, cell: str = "rnn") -> str:
        """What Pascanu et al.'s conditions predict (and, given the measured decay ``rate``, what
        happens), in words: :func:`bptt_core.flow.verdicts.gradient_verdict`, which every page shares.

        ``plain``: ASCII symbols (sigma_1, gamma) for terminals and logs; False: σ₁, γ for the UI."""
        return gradient_verdict(self.gamma, self.sigma1, rate, cell=cell, plain=plain).text


def spectrum(rnn: nn.Module) -> Spectrum:
    """Eigenvalues and singular values of the recurrent matrix (a stack: the top layer's).

    The diagonal cells have no recurrent matrix; their step Jacobian diag(a_t) is shown instead:
    the LRU's diag(lambda) on the real state (Re h, Im h), whose eigenvalues are lambda and its
    conjugate and whose singular values are |lambda| (twice); the input-dependent cells' diag(a)
    at zero input (a_t moves with x_t: the Lyapunov spectrum follows the real trajectory)."""
    view = cell_view(rnn)
    if hasattr(view, "diagonal"):
        return _diagonal_spectrum(view)
    W = recurrent_matrix(view)  # (H, H) float64
    eig = torch.linalg.eigvals(W).numpy()
    sv = torch.linalg.svdvals(W).numpy()
    gamma = ACTIVATION_GAMMA[view.activation] if view.kind == "rnn" else 1.0
    label = {"rnn": "W_hh", "lstm": "W_hg (LSTM cell-candidate block)", "gru": "W_hn (GRU candidate block)"}[view.kind]
    if getattr(view, "num_layers", 1) > 1:
        label = f"the top layer's {label}"
    return Spectrum(eig, sv, float(np.abs(eig).max()), float(sv[0]), gamma, label)


def _diagonal_spectrum(view) -> Spectrum:
    a = view.diagonal(torch.zeros(1, view.input_size, dtype=torch.float64))[0]  # (H,)
    if view.kind == "lru":
        eig = torch.cat([a, a.conj()]).numpy()  # the 2H x 2H real form
        label = "diag(λ) of the LRU on (Re h, Im h)"
    else:
        eig = a.to(torch.complex128).numpy()
        label = f"diag(a) of the {view.kind} cell at zero input (a_t changes with x_t)"
    sv = np.sort(np.abs(eig))[::-1].copy()
    return Spectrum(eig, sv, float(sv[0]), float(sv[0]), 1.0, label)


def lyapunov_exponents(rnn: nn.Module, x, h0=None, n_exponents: int | None = None, burn_in: int = 0) -> np.ndarray:
    """Top Lyapunov exponents (natural log per step) of the network driven by x, by QR.

    Q_0 = I; Z_t = J_t Q_{t-1} = Q_t R_t; lambda_i = mean over t of log |R_t[i, i]|. Steps before
    ``burn_in`` move Q but are not averaged. Divide by ln 10 for log10 units per step, the units
    of the decay rate. A unit whose direction collapses to exactly zero gives -inf.
    """
    J = step_jacobians(rnn, x, h0)  # (T, S, S)
    T, S, _ = J.shape
    m = S if n_exponents is None else int(n_exponents)
    if not 1 <= m <= S:
        raise ValueError(f"n_exponents must be in [1, {S}], got {n_exponents}")
    if not 0 <= burn_in < T:
        raise ValueError(f"burn_in must be in [0, {T - 1}], got {burn_in}")
    Q = torch.eye(S, m, dtype=torch.float64)
    total = torch.zeros(m, dtype=torch.float64)
    for t in range(T):
        Q, R = torch.linalg.qr(J[t] @ Q)  # (S, m), (m, m)
        if t >= burn_in:
            with np.errstate(divide="ignore"):
                total += torch.log(torch.abs(torch.diagonal(R)))
    return (total / (T - burn_in)).numpy()


def lyapunov_log10(rnn: nn.Module, x, **kw) -> np.ndarray:
    return lyapunov_exponents(rnn, x, **kw) / math.log(10)
