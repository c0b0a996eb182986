"""Mean-field theory (bptt_core.flow.theory): the fixed point q*, chi_1, the memory time and the boundary gain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bptt_core.flow import theory


def test_mean_field_fixed_point_and_chi1():
    assert theory.q_star(0.8) == 0.0 and theory.chi1(0.8) == pytest.approx(0.64)  # undriven, ordered: q* = 0
    for g, iv, bv in [(1.5, 0.0, 0.0), (2.0, 1.0, 0.1), (0.5, 0.3, 0.0)]:
        q = theory.q_star(g, iv, bv)
        # the fixed point, checked with an independent expectation (dense Riemann sum)
        z = np.linspace(-12, 12, 200_001)
        w = np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
        assert g * g * np.sum(w * np.tanh(math.sqrt(q) * z) ** 2) + iv + bv == pytest.approx(q, rel=1e-9)
        chi = g * g * np.sum(w / np.cosh(math.sqrt(q) * z) ** 4)
        assert theory.chi1(g, iv, bv) == pytest.approx(chi, rel=1e-9)
    g = theory.boundary_gain(0.5, 0.2)
    assert theory.chi1(g, 0.5, 0.2) == pytest.approx(1.0, abs=1e-9)
    assert theory.boundary_gain(0.0, 0.0) == 1.0
    assert theory.memory_time(theory.chi1(0.5)) == pytest.approx(-1 / math.log(0.25))
    assert theory.predicted_decay_rate(0.5) == pytest.approx(0.5 * math.log10(0.25))
