"""What callers hand the public functions (bptt_core.models.arguments), issue 11's findings 4 and 7:
parametrized and pruned modules are read through their effective weights, a float16 module is analysed
exactly, every bad argument gets a ValueError naming it, and fuzzed arguments give only ValueErrors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrizations, prune

from bptt_core import (
    bptt_gradients,
    contributions,
    jacobian_log_norms,
    lyapunov_exponents,
    rtrl_gradients,
    spectrum,
    tbptt_gradients,
)
from bptt_core.models.recurrent import ElmanRNN
from tests.helpers.hostile import ATTACK_H, ATTACK_I, FUZZ, allow_value_errors
from tests.helpers.jacobians import assert_L_close, reference_L

pytestmark = pytest.mark.filterwarnings("ignore:Complex modules:UserWarning")  # the complex modules are refused

PARAMETRIZE = {
    "orthogonal": lambda m: parametrizations.orthogonal(m, "weight_hh_l0"),
    "weight_norm": lambda m: parametrizations.weight_norm(m, "weight_hh_l0"),
    "spectral_norm": lambda m: parametrizations.spectral_norm(m, "weight_hh_l0"),
    "pruned": lambda m: prune.l1_unstructured(m, "weight_hh_l0", amount=0.5),
    "old spectral_norm": lambda m: torch.nn.utils.spectral_norm(m, "weight_hh_l0"),
}
CELLS = {
    "nn.RNN": lambda: nn.RNN(ATTACK_I, ATTACK_H),
    "ElmanRNN-sigmoid": lambda: ElmanRNN(ATTACK_I, ATTACK_H, "sigmoid"),
    "nn.LSTM": lambda: nn.LSTM(ATTACK_I, ATTACK_H),
    "nn.GRU": lambda: nn.GRU(ATTACK_I, ATTACK_H),
}


def constrained(cell: str, how: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = CELLS[cell]().double()
    if how == "orthogonal" and cell in ("nn.LSTM", "nn.GRU"):  # (G*H, H) is not square: weight_norm instead
        how = "weight_norm"
    PARAMETRIZE[how](m)
    if how == "old spectral_norm":  # its power iteration runs once per training-mode forward, as in training
        for _ in range(30):
            m(torch.zeros(1, ATTACK_I, dtype=torch.float64))
    return m.eval()


@pytest.mark.parametrize("how", PARAMETRIZE)
@pytest.mark.parametrize("cell", CELLS)
def test_finding7_constrained_modules_match_autograd(cell, how):
    m = constrained(cell, how)
    x = torch.randn(5, ATTACK_I, dtype=torch.float64)
    assert_L_close(jacobian_log_norms(m, x, norm=2), reference_L(m, x, 2), atol=1e-9)
    readout = nn.Linear(ATTACK_H, 2).double()
    y = torch.randn(5, 2, dtype=torch.float64)
    ref = bptt_gradients(m, readout, x, y)  # autograd through the module's own forward
    for got in (rtrl_gradients(m, readout, x, y), tbptt_gradients(m, readout, x, y, 5, 5)):
        assert len(got) == len(ref)
        for g, r in zip(got, ref, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)
    assert not np.isnan(lyapunov_exponents(m, x)).any()
    if cell in ("nn.RNN", "ElmanRNN-sigmoid") and "spectral" in how:
        assert abs(spectrum(m).sigma1 - 1) < 1e-3  # the constraint is what the spectrum page shows


@pytest.mark.parametrize("how", PARAMETRIZE)
@pytest.mark.parametrize("cell", CELLS)
def test_finding7_contributions_of_constrained_modules_are_those_of_their_effective_weights(cell, how):
    m = constrained(cell, how)
    plain = CELLS[cell]().double()
    with torch.no_grad():
        for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(plain, k).copy_(getattr(m, k))
    readout = nn.Linear(ATTACK_H, 2).double()
    x, y = torch.randn(5, ATTACK_I, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    before = [q.detach().clone() for q in m.parameters()]
    for param in ("weight_hh_l0", "weight_ih_l0"):
        got = contributions(m, readout, x, y, 4, param)
        assert got.abs().max() > 0
        torch.testing.assert_close(got, contributions(plain, readout, x, y, 4, param), rtol=1e-9, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))  # left as it was
    assert "weight_hh_l0" not in dict(m.named_parameters())


def test_finding7_orthogonal_rnn_has_unit_spectral_norm_at_every_lag():
    torch.manual_seed(1)
    m = ElmanRNN(ATTACK_I, ATTACK_H, "linear").double()
    parametrizations.orthogonal(m, "weight_hh_l0")
    L = jacobian_log_norms(m, torch.randn(8, ATTACK_I, dtype=torch.float64), norm=2)
    np.testing.assert_allclose(L[np.tril_indices(8)], 0.0, atol=1e-12)


def meta_rnn():
    with torch.device("meta"):
        return nn.RNN(ATTACK_I, ATTACK_H)


GOOD_X = torch.randn(4, ATTACK_I)
BAD_CALLS = {
    "meta-device module": lambda: jacobian_log_norms(meta_rnn(), GOOD_X),
    "x=None": lambda: jacobian_log_norms(nn.RNN(ATTACK_I, ATTACK_H), None),
    "x a string": lambda: jacobian_log_norms(nn.RNN(ATTACK_I, ATTACK_H), "1,2,3"),
    "x an object array": lambda: jacobian_log_norms(
        nn.RNN(ATTACK_I, ATTACK_H), np.array([[1, "a", None]] * 4, dtype=object)
    ),
    "x complex": lambda: jacobian_log_norms(
        nn.RNN(ATTACK_I, ATTACK_H), torch.randn(4, ATTACK_I, dtype=torch.complex64)
    ),
    "x overflowing float32": lambda: tbptt_gradients(
        nn.RNN(ATTACK_I, ATTACK_H),
        nn.Linear(ATTACK_H, 1),
        torch.full((4, ATTACK_I), 1e39, dtype=torch.float64),
        torch.zeros(4, 1),
        2,
        2,
    ),
    "complex module": lambda: jacobian_log_norms(nn.RNN(ATTACK_I, ATTACK_H).to(torch.complex64), GOOD_X),
    "complex h0": lambda: jacobian_log_norms(
        nn.RNN(ATTACK_I, ATTACK_H), GOOD_X, h0=torch.ones(ATTACK_H, dtype=torch.complex128)
    ),
    "nan h0": lambda: jacobian_log_norms(nn.RNN(ATTACK_I, ATTACK_H), GOOD_X, h0=torch.full((ATTACK_H,), float("nan"))),
    "inf h0": lambda: jacobian_log_norms(
        nn.LSTM(ATTACK_I, ATTACK_H), GOOD_X, h0=torch.full((2 * ATTACK_H,), float("inf"))
    ),
    "dtype int64": lambda: jacobian_log_norms(nn.RNN(ATTACK_I, ATTACK_H), GOOD_X, dtype=torch.int64),
    "dtype 'float32'": lambda: jacobian_log_norms(nn.RNN(ATTACK_I, ATTACK_H), GOOD_X, dtype="float32"),
    "dtype float16, spectral": lambda: jacobian_log_norms(
        nn.RNN(ATTACK_I, ATTACK_H), GOOD_X, norm=2, dtype=torch.float16
    ),
    "dtype float16, chain": lambda: jacobian_log_norms(
        nn.RNN(ATTACK_I, ATTACK_H), GOOD_X, dtype=torch.float16, method="chain"
    ),
    "loss_mask a string": lambda: tbptt_gradients(
        nn.RNN(ATTACK_I, ATTACK_H), nn.Linear(ATTACK_H, 1), GOOD_X, torch.zeros(4, 1), 2, 2, loss_mask="1010"
    ),
    "readout complex": lambda: bptt_gradients(
        nn.RNN(ATTACK_I, ATTACK_H), nn.Linear(ATTACK_H, 1).to(torch.complex64), GOOD_X, torch.zeros(4, 1)
    ),
    "rnn not a module": lambda: rtrl_gradients("rnn", nn.Linear(ATTACK_H, 1), GOOD_X, torch.zeros(4, 1)),
}
ARGUMENT = {
    "meta-device module": "rnn",
    "complex module": "rnn",
    "rnn not a module": "rnn",
    "readout complex": "readout",
    "loss_mask a string": "loss_mask",
    "x overflowing float32": "x",
    "complex h0": "h0",
    "nan h0": "h0",
    "inf h0": "h0",
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_finding7_bad_arguments_get_a_value_error_naming_them(case):
    with pytest.raises(ValueError) as err:
        BAD_CALLS[case]()
    name = ARGUMENT.get(case, case.split()[0].split("=")[0])
    assert name in str(err.value), str(err.value)


@pytest.mark.parametrize("norm", ["fro", 2])
def test_finding4_float16_module_chain_is_exact(norm):
    """A float16 module is analysed in float64 from its (exactly representable) weights."""
    torch.manual_seed(2)
    m = nn.RNN(ATTACK_I, ATTACK_H).half()
    x = torch.randn(30, ATTACK_I)
    ref = reference_L(m.double(), x.double(), norm)
    m.half()
    assert_L_close(jacobian_log_norms(m, x, norm=norm, method="chain"), ref, atol=1e-5)


# Hypothesis: every argument of the public functions, hostile or not; only ValueError (or success).

VALUES = st.sampled_from(
    [
        None,
        "x",
        b"\x00",
        3,
        2.5,
        float("nan"),
        [1, 2],
        {"a": 1},
        np.array([[1, "a"]], dtype=object),
        np.full((4, ATTACK_I), np.nan),
        np.full((4, ATTACK_I), 1e39),
        torch.zeros(4, ATTACK_I, dtype=torch.complex64),
        torch.zeros(4, ATTACK_I, dtype=torch.int64),
        torch.zeros(4, ATTACK_I, dtype=torch.float16),
        torch.zeros(4, ATTACK_I, dtype=torch.float8_e4m3fn),
        torch.zeros(4, ATTACK_I, device="meta"),
        torch.zeros(4, ATTACK_I).to_sparse(),
        torch.zeros(4, 7),
        torch.zeros(0, ATTACK_I),
        torch.zeros(4, 1, ATTACK_I),
        torch.randn(4, ATTACK_I),
    ]
)
MODULES = st.sampled_from(
    [
        ("nn.RNN", None),
        ("nn.LSTM", None),
        ("nn.GRU", None),
        ("ElmanRNN-sigmoid", None),
        ("nn.RNN", "orthogonal"),
        ("nn.GRU", "pruned"),
        ("nn.LSTM", "old spectral_norm"),
        ("nn.RNN", "spectral_norm"),
        ("meta", None),
        ("complex", None),
        ("float16", None),
        ("not a module", None),
    ]
)


def module_from(spec):
    cell, how = spec
    if cell == "meta":
        return meta_rnn()
    if cell == "complex":
        return nn.RNN(ATTACK_I, ATTACK_H).to(torch.complex64)
    if cell == "float16":
        return nn.RNN(ATTACK_I, ATTACK_H).half()
    if cell == "not a module":
        return np.eye(3)
    m = CELLS[cell]()
    if how:
        PARAMETRIZE[how](m)
    return m


@FUZZ
@given(
    MODULES,
    VALUES,
    st.one_of(st.none(), VALUES),
    st.sampled_from(["fro", 2, 1, "nuc", None, "2"]),
    st.sampled_from(["h", "c", "x", 0]),
    st.sampled_from([None, torch.float32, torch.float64, torch.float16, torch.int64, "float32", torch.complex64]),
    st.sampled_from([None, "chain", "split", "fast"]),
)
def test_fuzz_jacobian_log_norms(spec, x, h0, norm, block, dtype, method):
    allow_value_errors(lambda: jacobian_log_norms(module_from(spec), x, h0, norm, block, dtype, method))


@FUZZ
@given(
    MODULES,
    st.sampled_from(["linear", "complex", "wide", "float64", "not linear"]),
    VALUES,
    VALUES,
    st.sampled_from([1, 2, 4, 0, -1, 2.5, "2", None, 10**9]),
    st.sampled_from([1, 3, 0, None, "a"]),
    st.sampled_from(
        [None, "1010", [True, False, True, True], np.ones(4), np.zeros(4), [1, 2], torch.ones(4) * float("nan")]
    ),
)
def test_fuzz_gradients(spec, ro, x, y, k1, k2, mask):
    readout = {
        "linear": lambda: nn.Linear(ATTACK_H, ATTACK_I),
        "complex": lambda: nn.Linear(ATTACK_H, ATTACK_I).to(torch.complex64),
        "wide": lambda: nn.Linear(ATTACK_H + 1, ATTACK_I),
        "float64": lambda: nn.Linear(ATTACK_H, ATTACK_I).double(),
        "not linear": lambda: nn.Tanh(),
    }[ro]()
    rnn = module_from(spec)
    allow_value_errors(lambda: tbptt_gradients(rnn, readout, x, y, k1, k2, mask))
    allow_value_errors(lambda: rtrl_gradients(rnn, readout, x, y, mask))
    allow_value_errors(lambda: bptt_gradients(rnn, readout, x, y, mask))
    allow_value_errors(lambda: contributions(rnn, readout, x, y, k2, "weight_hh_l0"))


@FUZZ
@given(MODULES, VALUES, st.one_of(st.none(), VALUES), st.sampled_from([None, 1, 0, 99, "2", 1.5]))
def test_fuzz_spectra(spec, x, h0, n):
    rnn = module_from(spec)
    allow_value_errors(lambda: spectrum(rnn))
    allow_value_errors(lambda: lyapunov_exponents(rnn, x, h0, n))
