"""Initialisations (bptt_core.models.init) have the spectra their papers promise, are seeded, and refuse
what cannot be done."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core.config import INITS
from bptt_core.flow.spectra import spectrum
from bptt_core.models.init import SPARSE_NONZEROS, initialise
from bptt_core.models.recurrent import ElmanRNN, make_rnn

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def blocks(module):
    """The (H, H) recurrent blocks, float64: one per gate."""
    W = module.weight_hh_l0.detach().to(torch.float64)
    H = W.shape[1]
    return [W[g * H : (g + 1) * H] for g in range(W.shape[0] // H)]


def radius(W):
    return torch.linalg.eigvals(W).abs().max().item()


# -- initialisations -------------------------------------------------------------------------------


@pytest.mark.parametrize("g", [0.5, 1.0, 3.0])
def test_gaussian_init_eigenvalues_fill_the_disk_of_radius_g(g):
    H = 400
    rnn = initialise(ElmanRNN(2, H), "gaussian", gain=g, seed=0)
    W = blocks(rnn)[0]
    assert W.std().item() == pytest.approx(g / math.sqrt(H), rel=0.02)  # variance g^2 / H
    lam = torch.linalg.eigvals(W).abs()
    assert lam.max().item() <= g * 1.08  # circular law: inside the disk, up to O(H^-1/2) at the edge
    assert lam.max().item() >= g * 0.92  # and it fills it
    # uniform on the disk: the fraction inside radius r*g is r^2
    for r in (0.5, 0.8):
        assert (lam < r * g).double().mean().item() == pytest.approx(r**2, abs=0.05)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("gain", [1.0, 0.5, 2.0])
def test_orthogonal_init_has_every_singular_value_equal_to_the_gain(cell, gain):
    rnn = initialise(make_rnn(cell, 3, 16), "orthogonal", gain=gain, seed=1)
    for W in blocks(rnn):
        np.testing.assert_allclose(torch.linalg.svdvals(W).numpy(), gain, rtol=1e-6)
    assert spectrum(rnn).sigma1 == pytest.approx(gain, rel=1e-6)


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.3])  # 0: the default 0.95
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_sparse_init_has_the_spectral_radius_and_15_nonzeros_per_unit(cell, rho):
    H = 40
    rnn = initialise(make_rnn(cell, 3, H), "sparse", spectral_radius_target=rho, seed=2)
    for W in blocks(rnn):
        assert radius(W) == pytest.approx(rho or 0.95, rel=1e-5)
        np.testing.assert_array_equal((W != 0).sum(1).numpy(), SPARSE_NONZEROS)


def test_sparse_init_on_fewer_than_15_units_is_dense():
    rnn = initialise(ElmanRNN(2, 6), "sparse", seed=0)
    assert (blocks(rnn)[0] != 0).all()
    assert radius(blocks(rnn)[0]) == pytest.approx(0.95, rel=1e-5)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_spectral_radius_rescaling_works_for_every_init(init, cell):
    for rho in (0.7, 1.5):
        rnn = initialise(make_rnn(cell, 3, 12), init, gain=1.3, spectral_radius_target=rho, seed=4)
        for W in blocks(rnn):
            assert radius(W) == pytest.approx(rho, rel=1e-5)


def test_identity_init_is_the_irnn():
    rnn = initialise(ElmanRNN(3, 5, "relu"), "identity", gain=0.8, seed=0)
    torch.testing.assert_close(rnn.weight_hh_l0.detach(), 0.8 * torch.eye(5))
    assert rnn.weight_ih_l0.abs().max().item() < 0.01  # N(0, 0.001^2)
    assert (rnn.bias_hh_l0 == 0).all() and (rnn.bias_ih_l0 == 0).all()


@pytest.mark.parametrize(
    "init,std",
    [
        ("xavier_normal", lambda g, H: g * math.sqrt(2 / (2 * H))),
        ("xavier_uniform", lambda g, H: g * math.sqrt(6 / (2 * H)) / math.sqrt(3)),
        ("kaiming", lambda g, H: g / math.sqrt(H)),
        ("pytorch", lambda g, H: g / math.sqrt(H) / math.sqrt(3)),
    ],
)
def test_scaled_inits_have_their_documented_spread(init, std):
    H, g = 200, 1.7
    W = blocks(initialise(ElmanRNN(2, H), init, gain=g, seed=0))[0]
    assert W.std().item() == pytest.approx(std(g, H), rel=0.03)


@pytest.mark.parametrize("init", INITS)
def test_init_is_seeded(init):
    a = initialise(nn.GRU(3, 8), init, seed=5)
    b = initialise(nn.GRU(3, 8), init, seed=5)
    c = initialise(nn.GRU(3, 8), init, seed=6)
    flat = [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, b, c)]
    assert torch.equal(flat[0], flat[1])
    assert not torch.equal(flat[0], flat[2])


@pytest.mark.parametrize(
    "kw,words",
    [
        (dict(scheme="foo"), "init must be one of"),
        (dict(scheme="orthogonal", gain=0.0), "gain"),
        (dict(scheme="orthogonal", gain=-1.0), "gain"),
        (dict(scheme="orthogonal", spectral_radius_target=-1.0), "spectral_radius"),
    ],
)
def test_initialise_refuses_bad_settings(kw, words):
    with pytest.raises(ValueError, match=words):
        initialise(ElmanRNN(2, 4), **kw)


def test_rescaling_a_nilpotent_matrix_is_refused():
    """rho = 0 (a strictly triangular W) cannot be rescaled to any rho: a clear error, not NaN."""
    rnn = ElmanRNN(2, 4)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.triu(torch.ones(4, 4), 1))
    from bptt_core.models.init import rescale_to_radius

    with pytest.raises(ValueError, match="spectral_radius"):
        rescale_to_radius(rnn.weight_hh_l0.detach(), 0.9)
