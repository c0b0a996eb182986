"""Spectrum figures (bptt_core.figures.spectra): 1/gamma and the unit circle drawn, and Zucchet & Orvieto's
measured sensitivity curve."""

from __future__ import annotations

import numpy as np

from bptt_core.figures.spectra import eigenvalue_figure, lambda_sensitivity_figure, singular_values_figure
from tests.helpers.figures import arr


def test_singular_values_draw_one_over_gamma_and_eigenvalues_the_unit_circle():
    fig = singular_values_figure(np.array([3.0, 1.0]), gamma=0.25)
    assert any(s.type == "line" and s.y0 == 4.0 for s in fig.layout.shapes)
    eig = eigenvalue_figure(np.array([0.3 + 0.1j]), 0.32)
    circle = eig.data[0]
    np.testing.assert_allclose(np.hypot(arr(circle.x), arr(circle.y)), 1.0)
    assert eig.layout.yaxis.scaleanchor == "x"


# == Zucchet & Orvieto's measured sensitivity curve ==========================================================


def test_sensitivity_figure_shows_the_measured_numbers(curve):
    fig = lambda_sensitivity_figure(curve)
    names = [t.name for t in fig.data]
    assert names[0].startswith("E|∂h_T/∂|λ||²") and len(fig.data) == 4
    np.testing.assert_allclose(fig.data[0].y, np.log10(curve.measured))
    np.testing.assert_allclose(fig.data[2].y, curve.jacobian_log10)
    np.testing.assert_allclose(fig.data[0].x, 1 - curve.radii)
    assert fig.layout.xaxis.type == "log" and "T = 300" in fig.layout.title.text
