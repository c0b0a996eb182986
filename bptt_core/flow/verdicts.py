"""What the numbers say about vanishing and exploding gradients, in words: one function for every page.

Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks": for a
vanilla RNN with γ ≥ |φ'|, one step back scales a gradient by at most γσ₁ (σ₁ the largest singular
value of W_hh), so ‖∂h_t/∂h_{t-k}‖ ≤ (γσ₁)^k · ‖I‖. Hence (docs/design.md, "Spectra"):

- γσ₁ < 1 is *sufficient* for vanishing: the bound itself decays geometrically;
- γσ₁ = 1 rules growth out (the bound stays at 1), but does not force decay;
- γσ₁ > 1 is *necessary* for exploding, not sufficient: only the measured rate tells.

The gated cells (LSTM, GRU) have state-dependent Jacobians and no such bound: only the measured
decay rate speaks for them. The Spectrum, Gradient flow and Calculator pages, the HTML report and
the command line all word their verdict through :func:`gradient_verdict`, so they cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# |log10 rate| below this (a factor within 2.3 % per step) reads as "neither": flat within the fit.
RATE_TOLERANCE = 0.01
# γσ₁ this close to 1 is the boundary case: an orthogonal W_hh in float32 has σ₁ = 1 ± ~1e-7, and
# (1 + 1e-6)^k stays within 0.1 % of 1 for a thousand steps: no growth worth the name.
BOUNDARY_TOLERANCE = 1e-6

UNICODE = dict(s1="σ₁", g="γ", gs="γσ₁", k="ᵏ", x="×")
ASCII = dict(s1="sigma_1", g="gamma", gs="gamma*sigma_1", k="^k", x="x")


@dataclass(frozen=True)
class GradientVerdict:
    risk: str  # "vanishing" | "exploding" | "neither" | "unknown": what happens (measured where measured)
    bound: str  # "vanishing" (γσ₁ < 1) | "no growth" (γσ₁ = 1) | "growth possible" (γσ₁ > 1) | "none" (gated)
    text: str  # one or two sentences for the page, built from the numbers above

    @property
    def alarming(self) -> bool:
        """Whether a page should show the verdict as a warning rather than as information."""
        return self.risk == "exploding"


def pascanu_bound(gamma_sigma1: float | None) -> str:
    """Which of Pascanu et al.'s three cases γσ₁ is in ("none" for a gated cell: no bound)."""
    if gamma_sigma1 is None or not math.isfinite(gamma_sigma1):
        return "none"
    if abs(gamma_sigma1 - 1.0) <= BOUNDARY_TOLERANCE:
        return "no growth"
    return "vanishing" if gamma_sigma1 < 1.0 else "growth possible"


def measured_risk(rate: float | None, tolerance: float = RATE_TOLERANCE) -> str:
    """The sign of the measured decay rate (log10 per step), as a word."""
    if rate is None or not math.isfinite(rate):
        return "unknown"
    if rate < -tolerance:
        return "vanishing"
    if rate > tolerance:
        return "exploding"
    return "neither"


def gradient_verdict(
    gamma: float | None,
    sigma1: float | None,
    rate: float | None = None,
    *,
    cell: str = "rnn",
    plain: bool = False,
    tolerance: float = RATE_TOLERANCE,
    rho: float | None = None,
) -> GradientVerdict:
    """The verdict for a network: Pascanu's case from γ and σ₁ (vanilla RNN only), then what the
    measured decay ``rate`` (log10 per step, None if not measured) says happens.

    The risk follows the measurement where there is one; without one it follows the bound where
    the bound decides (γσ₁ < 1: vanishing) and is "unknown" otherwise.
    """
    sym = ASCII if plain else UNICODE
    gs = gamma * sigma1 if cell == "rnn" and gamma is not None and sigma1 is not None else None
    bound = pascanu_bound(gs)
    risk = measured_risk(rate, tolerance)
    if risk == "unknown" and bound == "vanishing":
        risk = "vanishing"
    parts = [_bound_sentence(bound, gs, gamma, sigma1, cell, sym, rho)]
    if rate is not None and math.isfinite(rate):
        parts.append(_rate_sentence(risk, rate, sym))
    return GradientVerdict(risk, bound, " ".join(parts))


def _bound_sentence(bound: str, gs, gamma, sigma1, cell: str, sym: dict, rho: float | None = None) -> str:
    if bound == "none" and cell == "lru":
        top = f", with max|λ| = {rho:.4g}" if rho is not None else ""
        return (
            "The LRU's step Jacobian is diag(λ), the same at every step whatever the input: "
            f"‖∂h(t)/∂h(s)‖ = max|λ|^(t−s) in the spectral norm{top}."
        )
    if bound == "none" and cell in ("mingru", "minlstm", "ssm"):
        return (
            f"The {cell} cell's step Jacobian is diagonal and moves with the input x(t), not with the state: "
            "no bound from a matrix applies; the measured rate decides."
        )
    if bound == "none":
        return (
            f"The {cell.upper()}'s gates make each step's Jacobian depend on the state, so Pascanu's bound "
            "(for the vanilla RNN) does not apply: the measured rate decides."
            if cell != "rnn"
            else "No bound: the largest singular value is not finite."
        )
    head = f"{sym['gs']} = {gamma:g} {sym['x']} {_distinct(sigma1)} = {_distinct(gs)}"
    if bound == "vanishing":
        return f"{head} < 1: gradients must vanish, at least as fast as ({sym['gs']}){sym['k']} = {gs:.3g}{sym['k']}."
    if bound == "no growth":
        return (
            f"{head}{'' if _distinct(gs) == '1' else ' (1 within rounding)'}: the bound ({sym['gs']}){sym['k']} = 1 "
            "rules growth out; "
            "whether gradients vanish depends on the activations."
        )
    return f"{head} > 1: exploding gradients are possible, not guaranteed."


def _distinct(v: float) -> str:
    """v to 4 significant digits, or more where 4 would print a value off the boundary as "1"."""
    for digits in (4, 7, 10):
        txt = f"{v:.{digits}g}"
        if txt != "1" or abs(v - 1.0) <= BOUNDARY_TOLERANCE:
            return txt
    return f"{v:.12g}"


def _rate_sentence(risk: str, rate: float, sym: dict) -> str:
    factor = 10**rate
    what = {
        "vanishing": "vanish",
        "exploding": "explode",
        "neither": f"neither vanish nor explode (within ±{RATE_TOLERANCE:g} log10 per step)",
    }[risk]
    return f"Measured: the norm changes by 10^{rate:.3g} = {factor:.3g}{sym['x']} per step back, so gradients {what}."
