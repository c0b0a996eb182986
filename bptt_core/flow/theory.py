"""Mean-field theory of a random tanh network: the order/chaos boundary and the memory time scale.

Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli (2016, "Exponential expressivity in deep neural
networks through transient chaos"): with weights W_ij ~ N(0, g^2/H), the pre-activations of a wide
network are Gaussian with variance q, which settles at the fixed point

    q* = g^2 E[phi(sqrt(q*) z)^2] + sigma_in^2 + sigma_b^2,        z ~ N(0, 1),

here in its driven form (Molgedey, Schuchhardt & Schuster 1992; Chen, Pennington & Schoenholz
2018): a fresh input u_t of variance sigma_in^2 and a bias of variance sigma_b^2 enter every step.
A small perturbation of the state grows per step, in mean square, by

    chi_1 = g^2 E[phi'(sqrt(q*) z)^2];

chi_1 < 1 is the ordered phase (gradients vanish), chi_1 > 1 the chaotic one, chi_1 = 1 the
boundary (the "edge of chaos"). Chen et al. (2018) read a memory time scale off it,
xi = -1 / ln chi_1 steps, over which ||dh_t/dh_{t-k}||^2 falls by e; the norm itself then falls
by (1/2) log10 chi_1 decades per step, the units of the Gradient flow page's decay rate.

Gaussian expectations by the trapezoid rule on a uniform grid in z (|z| <= 10, step 0.05/sqrt(q)):
for these analytic integrands it converges exponentially in the distance of tanh's poles
(pi/(2 sqrt q)) over the step, so the values are exact to rounding at every q. Gauss-Hermite
quadrature, the textbook choice, was measured off by 1.5e-4 (101 nodes) and 5e-7 (201 nodes)
relative for E[sech^4] at q = 3.6: the integrand narrows as q grows and the nodes stay put.

In the sweep's networks (``init="gaussian"``, ``task="gaussian"``) W_ih has entries N(0, 1/I) and
x_t ~ N(0, I_I), so the input term has variance sigma_in^2 = input_scale^2, and the bias term
sigma_b^2 = bias_scale^2. The theory is for H -> infinity; a finite network's boundary is near it.
"""

from __future__ import annotations

import math

import numpy as np

from bptt_core.config import MAX_GAIN, check_float

Z_MAX = 10.0  # the Gaussian weight beyond |z| = 10 is below 1e-22
STEP = 0.05  # grid step in units of 1/sqrt(q) (and at most 0.05 in z): error ~exp(-2 pi (pi/2) / 0.05)
BISECTION_STEPS = 200


def gaussian_expectation(f, q: float) -> float:
    """E[f(sqrt(q) z)] for z ~ N(0, 1), by the trapezoid rule (see the module docstring)."""
    a = math.sqrt(max(q, 0.0))
    h = STEP / max(1.0, a)
    z = np.arange(-Z_MAX, Z_MAX + h / 2, h)
    w = np.exp(-0.5 * z * z) * (h / math.sqrt(2 * math.pi))
    return float(w @ f(a * z))


def _tanh_sq(a):
    return np.tanh(a) ** 2


def _sech4(a):
    with np.errstate(over="ignore"):  # cosh overflows to inf far out, where sech^4 is 0 anyway
        return (1.0 / np.cosh(a)) ** 4  # phi'(a)^2 for tanh, without 1 - tanh^2's cancellation


def q_star(g: float, input_var: float = 0.0, bias_var: float = 0.0) -> float:
    """The fixed point q* of the pre-activation variance (0 for an undriven network with g <= 1)."""
    check_float("g", g, 0.0, MAX_GAIN, lo_open=True)
    check_float("input_var", input_var, 0.0, 1e6)
    check_float("bias_var", bias_var, 0.0, 1e6)
    drive = input_var + bias_var

    def excess(q):  # F(q) - q: positive below the fixed point, negative above
        return g * g * gaussian_expectation(_tanh_sq, q) + drive - q

    if drive == 0.0 and g <= 1.0:
        return 0.0  # g^2 E[tanh^2] < q for every q > 0: only q = 0 is fixed
    lo, hi = (0.0 if drive > 0 else 1e-12), g * g + drive + 1.0  # F < g^2 + drive since tanh^2 < 1
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * max(hi, 1e-300):
            break
    return 0.5 * (lo + hi)


def chi1(g: float, input_var: float = 0.0, bias_var: float = 0.0) -> float:
    """Mean-square growth of a perturbation per step, g^2 E[phi'(sqrt(q*) z)^2] (tanh)."""
    return g * g * gaussian_expectation(_sech4, q_star(g, input_var, bias_var))


def memory_time(chi: float) -> float:
    """xi = -1/ln chi_1 steps (Chen et al. 2018): inf at the boundary, negative in the chaotic phase
    (where -xi is the time over which perturbations grow by e in mean square)."""
    if chi <= 0:
        return 0.0
    if chi == 1.0:
        return math.inf
    return -1.0 / math.log(chi)


def predicted_decay_rate(g: float, input_var: float = 0.0, bias_var: float = 0.0) -> float:
    """(1/2) log10 chi_1: decades per step of ||dh_t/dh_{t-k}||, the Gradient flow page's units."""
    return 0.5 * math.log10(chi1(g, input_var, bias_var))


def boundary_gain(input_var: float = 0.0, bias_var: float = 0.0, hi: float = 20.0) -> float:
    """The gain where chi_1 = 1 (1 exactly for an undriven network), by bisection; chi_1 rises with g."""
    if input_var + bias_var == 0.0:
        return 1.0
    lo = 1e-6
    if chi1(hi, input_var, bias_var) < 1.0:
        return math.nan  # driven so hard that no gain up to hi reaches chaos
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if chi1(mid, input_var, bias_var) < 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-11:
            break
    return 0.5 * (lo + hi)


def sweep_variances(input_scale: float, bias_scale: float) -> tuple[float, float]:
    """(sigma_in^2, sigma_b^2) of the sweep's Gaussian-init network on the Gaussian task."""
    return float(input_scale) ** 2, float(bias_scale) ** 2


def applies(cell: str, activation: str, init: str, task: str) -> str | None:
    """None when the mean-field theory here describes these settings, else why it does not."""
    if cell != "rnn" or activation != "tanh":
        return "the mean-field line is derived for the vanilla tanh RNN"
    if init != "gaussian":
        return "the mean-field line assumes Gaussian weights (init = gaussian)"
    if task != "gaussian":
        return "the mean-field line assumes Gaussian input (task = gaussian)"
    return None


def circular_law_radius(cfg, uploaded: bool = False) -> float | None:
    """The radius g of the disk a Gaussian init's eigenvalues fill (Girko's circular law: W_ij ~ N(0, g^2/H)),
    or None when the weights are not that (another init, a rescaled spectral radius, an uploaded model)."""
    if uploaded or cfg.init != "gaussian" or cfg.spectral_radius > 0:
        return None
    return float(cfg.gain)


def page_prediction(cfg, uploaded: bool = False) -> dict | None:
    """The mean-field numbers for the pages' network (input scale 1, no bias: sigma_in^2 = 1), or None
    when the theory does not describe it: chi_1, the predicted decay rate and memory time."""
    if uploaded or applies(cfg.cell, cfg.activation, cfg.init, cfg.task) is not None or cfg.spectral_radius > 0:
        return None
    iv, bv = sweep_variances(1.0, 0.0)
    chi = chi1(cfg.gain, iv, bv)
    return {
        "chi1": chi,
        "decay_rate": 0.5 * math.log10(chi),
        "memory_time": memory_time(chi),
        "boundary_gain": boundary_gain(iv, bv),
    }
