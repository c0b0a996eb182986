"""One verdict for every page: Pascanu et al.'s three cases at their boundaries, and the measured rate's sign."""

import math

import pytest
import torch

from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.flow.spectra import spectrum
from bptt_core.flow.summary import decay_rate
from bptt_core.flow.verdicts import RATE_TOLERANCE, gradient_verdict, measured_risk, pascanu_bound
from bptt_core.models.init import initialise
from bptt_core.models.recurrent import ElmanRNN, make_rnn


def elman_with(W: torch.Tensor, act: str = "tanh") -> ElmanRNN:
    m = ElmanRNN(2, W.shape[0], act).double()
    with torch.no_grad():
        m.weight_hh_l0.copy_(W)
    return m


# (activation, gamma, sigma_1 as a multiple of 1/gamma, Pascanu's case)
BOUNDARY_GRID = [
    ("tanh", 1.0, 0.9, "vanishing"),
    ("tanh", 1.0, 1.0, "no growth"),
    ("tanh", 1.0, 1.1, "growth possible"),
    ("sigmoid", 0.25, 1.0, "no growth"),  # sigma_1 = 4 = 1/gamma: the bound is 1^k
    ("sigmoid", 0.25, 0.99, "vanishing"),
    ("linear", 1.0, 1.0, "no growth"),
    ("relu", 1.0, 1.5, "growth possible"),
]


@pytest.mark.parametrize("act, gamma, scale, case", BOUNDARY_GRID)
def test_pascanu_case_at_and_around_the_boundary(act, gamma, scale, case):
    Q = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    m = elman_with(scale / gamma * Q, act)  # orthogonal times a scale: sigma_1 = scale / gamma
    sp = spectrum(m)
    v = gradient_verdict(sp.gamma, sp.sigma1, cell="rnn")
    assert sp.gamma == gamma
    assert v.bound == case == pascanu_bound(sp.gamma * sp.sigma1)
    # the words say the case and nothing that contradicts it
    assert ("must vanish" in v.text) == (case == "vanishing")
    assert ("rules growth out" in v.text) == (case == "no growth")
    assert ("exploding gradients are possible" in v.text) == (case == "growth possible")


def test_orthogonal_tanh_at_gain_one_is_not_called_exploding():
    """The issue's case: sigma_1 = 1/gamma. The bound (gamma sigma_1)^k = 1 rules growth out."""
    rnn = make_rnn("rnn", 3, 16, "tanh")
    initialise(rnn, "orthogonal", 1.0, 0.0, 0)
    sp = spectrum(rnn)
    assert sp.sigma1 == pytest.approx(1.0, abs=1e-6)
    text = sp.verdict(plain=False)
    assert "exploding" not in text and "rules growth out" in text


@pytest.mark.parametrize("rate, risk", [(-0.5, "vanishing"), (-RATE_TOLERANCE / 2, "neither"), (0.0, "neither"),
                                        (RATE_TOLERANCE * 2, "exploding"), (float("nan"), "unknown"), (None, "unknown")])  # fmt: skip
def test_measured_risk_is_the_sign_of_the_rate(rate, risk):
    assert measured_risk(rate) == risk


def test_gated_cells_have_no_bound_and_follow_the_measurement():
    for cell in ("lstm", "gru"):
        v = gradient_verdict(1.0, 3.0, -0.2, cell=cell)
        assert v.bound == "none" and v.risk == "vanishing"
        assert "does not apply" in v.text and "Pascanu" in v.text
        assert gradient_verdict(1.0, 3.0, None, cell=cell).risk == "unknown"


def test_the_rate_sentence_states_the_number_it_was_given():
    v = gradient_verdict(1.0, 1.2, 0.05, cell="rnn")
    assert v.risk == "exploding" and v.alarming
    assert f"{10**0.05:.3g}×" in v.text and "explode" in v.text


def test_spectrum_verdict_agrees_with_the_engine_rate():
    torch.manual_seed(1)
    rnn = make_rnn("rnn", 2, 8, "linear").double()
    initialise(rnn, "orthogonal", 1.3, 0.0, 0)
    x = torch.randn(25, 2, dtype=torch.float64)
    rate = decay_rate(jacobian_log_norms(rnn, x))
    assert rate == pytest.approx(math.log10(1.3), rel=1e-6)  # linear orthogonal: exactly (1.3)^k
    v = gradient_verdict(spectrum(rnn).gamma, spectrum(rnn).sigma1, rate)
    assert v.bound == "growth possible" and v.risk == "exploding"
