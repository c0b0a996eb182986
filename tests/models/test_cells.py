"""The diagonal cells (bptt_core.models.cells): the LRU's ring initialisation, the parallel scan equals the
sequential form, nn.GRU's calling convention."""

from __future__ import annotations

import math

import pytest
import torch

from bptt_core import LRU, MinGRU, MinLSTM
from tests.helpers.layouts import DIAGONAL, H, I, make_module


def test_lru_ring_initialisation_and_parameters():
    torch.manual_seed(0)
    m = LRU(3, 500, r_min=0.9, r_max=0.999, max_phase=math.pi / 10)
    assert {n for n, _ in m.named_parameters()} == {
        "nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D"
    }  # fmt: skip
    lam = m.double().eigenvalues().detach()
    r = lam.abs()
    assert 0.9 <= r.min() and r.max() <= 0.999
    assert 0 <= lam.angle().min() and lam.angle().max() <= math.pi / 10 + 1e-6
    torch.testing.assert_close(torch.exp(m.gamma_log.detach().double()), torch.sqrt(1 - r**2), rtol=1e-5, atol=1e-7)
    # |lambda|^2 uniform on [r_min^2, r_max^2]: its mean is the midpoint (500 draws: 4 standard errors)
    assert (r**2).mean().item() == pytest.approx((0.81 + 0.998001) / 2, abs=4 * (0.998001 - 0.81) / math.sqrt(12 * 500))
    for bad, words in [(dict(r_min=0.5, r_max=0.5), "r_min must be below"), (dict(r_max=1.5), "r_max must be in")]:
        with pytest.raises(ValueError, match=words):
            LRU(3, 4, **bad)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_parallel_scan_equals_the_sequential_form(cls):
    torch.manual_seed(3)
    seq = cls(I, 5).double()
    par = cls(I, 5, scan="parallel").double()
    par.load_state_dict(seq.state_dict())
    x = torch.randn(200, 4, I, dtype=torch.float64) * 2
    h0 = torch.randn(1, 4, 5, dtype=torch.float64)
    for a, b in zip(seq(x, h0), par(x, h0), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match="scan must be one of sequential, parallel"):
        cls(I, 5, scan="tree")


@pytest.mark.parametrize("name", list(DIAGONAL))
def test_calling_convention_of_nn_gru(name):
    m = make_module(DIAGONAL[name])
    S = m.state_size
    x = torch.randn(7, 4, I, dtype=torch.float64)
    out, h_n = m(x)
    assert out.shape == (7, 4, H) and h_n.shape == (1, 4, S)
    out1, h1 = m(x[:, 2])  # unbatched: (T, I) -> (T, H), (1, S)
    assert out1.shape == (7, H) and h1.shape == (1, S)
    torch.testing.assert_close(out1, out[:, 2])
    # running in two halves with the state handed over equals one run (h0 / h_n in the real form)
    o_a, h_a = m(x[:3])
    o_b, h_b = m(x[3:], h_a)
    torch.testing.assert_close(torch.cat([o_a, o_b]), out)
    torch.testing.assert_close(h_b, h_n)
    with pytest.raises(ValueError, match="h0 must have shape"):
        m(x, torch.zeros(1, 4, S + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.zeros(7, 4, I + 1))
