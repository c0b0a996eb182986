"""Property-based tests (hypothesis) over the whole settings space of bptt_core.

Two promises, checked on drawn inputs far wider than the dashboard's widgets allow (ints, floats,
NaN, inf, negatives, huge values, wrong types, unknown names):

1. bad input is refused with a ValueError only, never any other exception type;
2. every result that is returned is well formed: the gradient-flow matrix L is finite on and
   below the diagonal (or -inf exactly where the product of step Jacobians is exactly zero,
   e.g. dead ReLU units) and NaN exactly above it; spectra and profiles are finite.

The same for uploads: load_model on random and mutated bytes, load_sequence on random CSV text.
Sizes stay small inside hypothesis (hidden_size and seq_len are drawn mostly small) and the
profile is derandomized, so CI sees the same examples on every run.
"""

from __future__ import annotations

import io
import math
import string

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from torch import nn

from bptt_core import ModelConfig, build_model, build_task, jacobian_log_norms, spectrum
from bptt_core.config import ACTIVATIONS, CELLS, INITS, MAX_INPUT, MAX_SEQ_LEN, TASKS
from bptt_core.files.model_io import UploadError, load_model, load_sequence, model_bytes
from bptt_core.flow.jacobians import step_jacobians
from bptt_core.flow.summary import decay_rate, lag_profile, memory_horizon
from bptt_core.models.recurrent import ElmanRNN

settings.register_profile(
    "bptt",
    derandomize=True,  # the same examples on every run: CI is deterministic
    database=None,
    deadline=None,  # a few examples build and run a model; timing is the benchmarks' job
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
PROFILE = settings.get_profile("bptt")

# -- strategies ------------------------------------------------------------------------------------


HUGE = 10**400  # far past float's range: float(HUGE) overflows, which must still be a ValueError

WILD = st.one_of(
    st.integers(min_value=-HUGE, max_value=HUGE),
    st.integers(min_value=-3, max_value=3000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.5, 1e300, -0.0, 2.0**31, 2.0**31 - 1]),
    st.text(max_size=6),
    st.sampled_from(["", "rnn", "LSTM", "tanh ", "1", "nan", "1e3", "orthogonal"]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.builds(complex, st.floats(-2, 2), st.floats(-2, 2)),
    st.builds(np.int64, st.integers(-(2**40), 2**40)),
    st.builds(np.float32, st.floats(-1e6, 1e6, width=32)),
)

VALID_FIELDS = {
    "cell": st.sampled_from(CELLS),
    "activation": st.sampled_from(ACTIVATIONS),
    "hidden_size": st.integers(1, 6),
    "input_size": st.sampled_from([0, 0, 1, 2, 3]),
    "seq_len": st.integers(1, 14),
    "init": st.sampled_from(INITS),
    "gain": st.one_of(st.floats(0.01, 3.0), st.sampled_from([1e-6, 10.0, 100.0])),
    "spectral_radius": st.one_of(st.just(0.0), st.floats(0.0, 3.0), st.just(100.0)),
    "seed": st.one_of(st.integers(0, 50), st.just(2**31 - 1)),
    "task": st.sampled_from(TASKS),
    "batch_size": st.integers(1, 3),
}


@st.composite
def config_kwargs(draw, wild_share: float = 0.3):
    """Settings as a page or a URL might pass them: each field valid, wild, or left out."""
    kw = {}
    for name, valid in VALID_FIELDS.items():
        choice = draw(st.sampled_from(["valid"] * 6 + ["wild"] * int(10 * wild_share) + ["absent"] * 2))
        if choice == "valid":
            kw[name] = draw(valid)
        elif choice == "wild":
            kw[name] = draw(WILD)
    return kw


UNKNOWN_NAMES = st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=8), WILD, max_size=2)


def only_value_errors(fn, *args, **kwargs):
    """Call fn; a ValueError is an allowed refusal (returns None); anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        assert str(e), "a ValueError must say what is wrong"
        return None


# -- the gradient-flow matrix: what well formed means -----------------------------------------------


def exactly_zero_products(J: torch.Tensor, block: slice) -> np.ndarray:
    """(T, T) bool: whether (J_t ... J_{s+1})[block, block] is exactly zero. Float64, every running
    product renormalised after every step, so nothing underflows on its way to zero; batched over s."""
    T = J.shape[0]
    zero = np.zeros((T, T), dtype=bool)
    P = J[1:].clone()  # (T-1, S, S): lag 1, P[s] = J_{s+1}
    for k in range(1, T):
        s = np.arange(T - k)
        zero[s + k, s] = (P[:, block, block] == 0).flatten(1).all(1).numpy()
        n = torch.linalg.matrix_norm(P)  # (T-k,)
        P = P / torch.where(n > 0, n, 1.0)[:, None, None]
        if k < T - 1:
            P = torch.bmm(J[k + 1 :], P[:-1])  # extend every product by one step
    return zero


# A product of unit-norm step Jacobians can shrink by more than float32's range in one matmul; the
# engine must then still give the finite value (about 1e-50 here), not -inf.
UNDERFLOW_CFG = ModelConfig(
    cell="gru", hidden_size=5, input_size=1, seq_len=4, init="kaiming", gain=100.0, seed=20, batch_size=2
)


def assert_well_formed(L: np.ndarray, T: int, J: torch.Tensor, block: slice | None = None, norm="fro"):
    """NaN exactly above the diagonal; on and below it finite, or -inf exactly where the product is 0."""
    assert L.shape == (T, T) and L.dtype == np.float64
    upper = np.triu(np.ones((T, T), dtype=bool), 1)
    assert np.isnan(L[upper]).all(), "L must be NaN exactly above the diagonal"
    lower = ~upper
    assert not np.isnan(L[lower]).any(), f"NaN on or below the diagonal at {np.argwhere(np.isnan(L) & lower)[:3]}"
    assert not (L[lower] == np.inf).any(), "+inf: a norm overflowed"
    block = block or slice(0, J.shape[1])
    zero = exactly_zero_products(J, block)
    neg_inf = np.isneginf(L) & lower
    assert not (zero & lower & ~neg_inf).any(), (
        f"exactly-zero product not -inf at {np.argwhere(zero & lower & ~neg_inf)[:3]}"
    )
    wrong = neg_inf & ~zero
    assert not wrong.any(), f"-inf where the product is not zero at {np.argwhere(wrong)[:3]}"


def test_float32_gradient_flow_does_not_underflow_to_minus_inf():
    rnn, _ = build_model(UNDERFLOW_CFG)
    x = build_task(UNDERFLOW_CFG).x[:, 0]
    L32 = jacobian_log_norms(rnn, x)
    L64 = jacobian_log_norms(rnn, x, dtype=torch.float64)
    assert np.isfinite(L64[3, 0]) and L64[3, 0] < -40  # the true value: about 1e-50
    np.testing.assert_allclose(L32, L64, rtol=0, atol=1e-3)


def small_enough(cfg: ModelConfig) -> bool:
    return cfg.hidden_size <= 6 and cfg.seq_len <= 400 and cfg.batch_size <= 3


# -- ModelConfig ------------------------------------------------------------------------------------


def _estimate(**kw):
    from bptt_core.learning.calculator import estimate

    return estimate("rnn", 2, 3, 1, 5, 1, measure_time=False, **kw)


def _train_config(**kw):
    from bptt_core.learning.training import TrainConfig

    return TrainConfig(**kw)


@pytest.mark.parametrize(
    "make, field",
    [(ModelConfig, "gain"), (ModelConfig, "spectral_radius"), (_train_config, "lr"), (_train_config, "clip_threshold"),
     (_estimate, "lr"), (_estimate, "gain")],
)  # fmt: skip
@pytest.mark.parametrize("value", [10**400, -(10**309)], ids=["1e400", "-1e309"])
def test_huge_int_float_settings_are_value_errors(make, field, value):
    with pytest.raises(ValueError, match=field):
        make(**{field: value})


@settings(PROFILE, max_examples=400)
@given(config_kwargs(wild_share=0.5))
def test_model_config_raises_only_value_error(kw):
    cfg = only_value_errors(ModelConfig, **kw)
    if cfg is not None:  # accepted: normalised, hashable, and a JSON round trip gives it back
        assert type(cfg.hidden_size) is int and type(cfg.gain) is float
        assert math.isfinite(cfg.gain) and math.isfinite(cfg.spectral_radius)
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg and hash(cfg) == hash(ModelConfig(**cfg.to_dict()))


@settings(PROFILE, max_examples=150)
@given(config_kwargs(), UNKNOWN_NAMES)
def test_from_dict_with_unknown_names_raises_only_value_error(kw, extra):
    extra = {k: v for k, v in extra.items() if k not in VALID_FIELDS}
    cfg = only_value_errors(ModelConfig.from_dict, {**kw, **extra})
    if extra:
        assert cfg is None, f"unknown settings {sorted(extra)} were accepted"


# -- build, Jacobians, spectra ----------------------------------------------------------------------


@st.composite
def valid_small_configs(draw):
    kw = draw(config_kwargs(wild_share=0.0))
    for name in ("hidden_size", "seq_len", "batch_size"):  # absent means the (large) default: keep small
        kw.setdefault(name, draw(VALID_FIELDS[name]))
    if draw(st.integers(0, 9)) == 0:  # now and then a long sequence on a tiny model: overflow hunting
        kw |= {"hidden_size": draw(st.integers(1, 3)), "seq_len": draw(st.integers(100, 300)), "batch_size": 1}
    cfg = only_value_errors(ModelConfig, **kw)
    assume(cfg is not None)
    return cfg


@settings(PROFILE, max_examples=250)
@given(valid_small_configs(), st.sampled_from(["fro", 2]))
@example(ModelConfig(cell="rnn", activation="relu", hidden_size=3, init="identity", seq_len=8, task="sine"), "fro")
@example(ModelConfig(cell="rnn", activation="linear", init="gaussian", gain=100.0, hidden_size=2, seq_len=300), "fro")
def test_build_and_gradient_flow_are_value_error_or_well_formed(cfg, norm):
    assert small_enough(cfg)
    built = only_value_errors(build_model, cfg)
    data = only_value_errors(build_task, cfg)
    if built is None or data is None:
        event("refused by build_model / build_task")
        return
    rnn, readout = built
    assert all(torch.isfinite(p).all() for p in [*rnn.parameters(), *readout.parameters()])
    assert data.x.shape == (cfg.seq_len, cfg.batch_size, rnn.input_size)
    assert torch.isfinite(data.x).all() and torch.isfinite(data.y).all()
    x = data.x[:, 0]  # (T, I)
    L = only_value_errors(jacobian_log_norms, rnn, x, norm=norm)
    if L is None:
        return
    event(f"L computed ({'long' if cfg.seq_len >= 100 else 'short'} sequence)")
    J = step_jacobians(rnn, x)  # (T, S, S) float64
    block = slice(0, cfg.hidden_size) if cfg.cell == "lstm" else None
    assert_well_formed(L, cfg.seq_len, J, block, norm)
    prof = lag_profile(L)
    assert prof.shape == (cfg.seq_len,) and not (prof == np.inf).any()
    rate = decay_rate(L)
    assert math.isnan(rate) or math.isfinite(rate) or (rate == -math.inf)
    horizon = memory_horizon(L)
    assert horizon is None or 1 <= horizon < cfg.seq_len


@settings(PROFILE, max_examples=80)
@given(valid_small_configs())
def test_spectrum_is_finite(cfg):
    built = only_value_errors(build_model, cfg)
    if built is None:
        return
    sp = spectrum(built[0])
    H = 2 * cfg.hidden_size if cfg.cell == "lru" else cfg.hidden_size  # the LRU's real form (Re h, Im h)
    assert sp.eigenvalues.shape == (H,) and sp.singular_values.shape == (H,)
    assert np.isfinite(sp.eigenvalues).all() and np.isfinite(sp.singular_values).all()
    assert (sp.singular_values >= 0).all() and (np.diff(sp.singular_values) <= 1e-12 * (1 + sp.sigma1)).all()
    assert math.isfinite(sp.rho) and math.isfinite(sp.sigma1) and sp.rho <= sp.sigma1 * (1 + 1e-9) + 1e-12
    if cfg.spectral_radius > 0:  # the promise of the setting: exactly this rho (of each gate block)
        assert sp.rho == pytest.approx(cfg.spectral_radius, rel=1e-4)


@settings(PROFILE, max_examples=100)
@given(
    st.sampled_from(["rnn-tanh", "rnn-relu", "lstm", "gru"]),
    st.one_of(WILD, st.sampled_from(["fro", 2, "2", 2.0, "nuc", 1])),
    st.integers(0, 6),
    st.one_of(st.integers(1, 4), WILD),
    st.sampled_from(["finite", "nan", "inf", "huge"]),
)
def test_jacobian_log_norms_bad_arguments(kind, norm, T, width, values):
    """Wrong norms, widths, lengths and non-finite inputs: ValueError, or a well-formed L."""
    torch.manual_seed(0)
    rnn = {
        "rnn-tanh": lambda: nn.RNN(3, 4),
        "rnn-relu": lambda: ElmanRNN(3, 4, "relu"),
        "lstm": lambda: nn.LSTM(3, 4),
    }.get(kind, lambda: nn.GRU(3, 4))()
    if not isinstance(width, int) or isinstance(width, bool) or not 0 <= width <= 8:
        width = 3
    x = torch.randn(T, width)
    if values != "finite" and T > 0:
        x[T // 2, 0] = {"nan": float("nan"), "inf": float("inf"), "huge": 1e30}[values]
    L = only_value_errors(jacobian_log_norms, rnn, x, norm=norm)
    if L is not None:
        assert width == 3 and T >= 1 and values in ("finite", "huge") and norm in ("fro", 2)
        block = slice(0, 4) if kind == "lstm" else None
        assert_well_formed(L, T, step_jacobians(rnn, x), block, norm)


# -- uploads ----------------------------------------------------------------------------------------

SEED_MODELS = {
    "rnn.pt": model_bytes(nn.RNN(2, 3), "m.pt"),
    "lstm.pt": model_bytes(nn.LSTM(2, 3), "m.pt", readout=nn.Linear(3, 1)),
    "gru.safetensors": model_bytes(nn.GRU(2, 3), "m.safetensors"),
    "elman.safetensors": model_bytes(ElmanRNN(2, 3, "sigmoid"), "m.safetensors", readout=nn.Linear(3, 2)),
}


@st.composite
def mutated_model_bytes(draw):
    name = draw(st.sampled_from(sorted(SEED_MODELS)))
    data = bytearray(SEED_MODELS[name])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            data = data[:i]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
    return bytes(data), "m." + name.split(".")[1]


def assert_loaded_model_sane(m, data):
    assert m.cell in CELLS and 1 <= m.input_size <= MAX_INPUT and 1 <= m.hidden_size
    for p in m.module.parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all()
    out = m.module(torch.zeros(2, m.input_size))[0]
    assert out.shape == (2, m.hidden_size)


@settings(PROFILE, max_examples=150)
@given(mutated_model_bytes(), st.sampled_from([None, "tanh", "relu"]))
def test_load_model_on_mutated_bytes(upload, act):
    data, filename = upload
    try:
        m = load_model(data, filename, nonlinearity=act)
    except UploadError as e:
        assert "expected" in str(e), str(e)
        return
    assert_loaded_model_sane(m, data)


@settings(PROFILE, max_examples=100)
@given(st.binary(max_size=300), st.sampled_from(["m.pt", "m.pth", "m.safetensors", "m.bin", "m"]))
def test_load_model_on_random_bytes(data, filename):
    try:
        m = load_model(data, filename)
    except UploadError as e:
        assert str(e)
        return
    assert_loaded_model_sane(m, data)


CSV_ALPHABET = "0123456789-+.eE,;\t \n\rnaifNAI_x"


@settings(PROFILE, max_examples=300)
@given(st.text(CSV_ALPHABET, max_size=80), st.integers(1, 4))
@example("1,2\n3,4\n", 2)
@example("a,b\n1e3,-2.5\n", 2)
@example("1e400,1\n", 2)  # overflows to inf: must be refused as non-finite
def test_load_sequence_on_random_text(text, width):
    try:
        x = load_sequence(text.encode(), "x.csv", width)
    except UploadError as e:
        assert "expected" in str(e) or "expects" in str(e), str(e)
        return
    assert x.dtype == torch.float32 and x.dim() == 2 and x.shape[1] == width and 1 <= x.shape[0] <= MAX_SEQ_LEN
    assert torch.isfinite(x).all()


FINITE32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(PROFILE, max_examples=100)
@given(
    st.lists(st.lists(FINITE32, min_size=1, max_size=4), min_size=1, max_size=12).filter(
        lambda rows: len({len(r) for r in rows}) == 1
    ),
    st.sampled_from([",", ";", "\t", " "]),
    st.booleans(),
)
def test_sequence_csv_round_trip(rows, sep, header):
    """Any table of numbers written as CSV (with or without a header) reads back exactly."""
    arr = np.asarray(rows, dtype=np.float32)
    lines = ([sep.join(f"c{j}" for j in range(arr.shape[1]))] if header else []) + [
        sep.join(repr(float(v)) for v in row) for row in arr
    ]
    x = load_sequence("\n".join(lines).encode(), "x.csv", arr.shape[1])
    np.testing.assert_array_equal(x.numpy(), arr)
    buf = io.BytesIO()
    np.save(buf, arr)
    np.testing.assert_array_equal(load_sequence(buf.getvalue(), "x.npy", arr.shape[1]).numpy(), arr)


# -- training, truncation and the calculator: configuration validation ------------------------------

TRAIN_FIELDS = {
    "steps": st.integers(1, 20),
    "optimizer": st.sampled_from(["sgd", "adam"]),
    "lr": st.floats(1e-4, 1.0),
    "batch_size": st.integers(1, 8),
    "clip": st.sampled_from(["none", "norm", "value"]),
    "clip_threshold": st.floats(1e-3, 10.0),
    "k1": st.integers(0, 12),
    "k2": st.integers(0, 12),
    "seed": st.integers(0, 100),
}


@st.composite
def train_kwargs(draw):
    kw = {}
    for name, valid in TRAIN_FIELDS.items():
        choice = draw(st.sampled_from(["valid"] * 5 + ["wild"] * 4 + ["absent"] * 2))
        if choice != "absent":
            kw[name] = draw(valid if choice == "valid" else WILD)
    return kw


@settings(PROFILE, max_examples=300)
@given(train_kwargs())
def test_train_config_raises_only_value_error(kw):
    from bptt_core.learning.training import TrainConfig

    cfg = only_value_errors(TrainConfig, **kw)
    if cfg is not None:
        assert (cfg.k1 == 0) == (cfg.k2 == 0) and cfg.lr > 0 and math.isfinite(cfg.clip_threshold)
        assert TrainConfig(**cfg.to_dict()) == cfg


@settings(PROFILE, max_examples=120)
@given(
    st.sampled_from(["rnn", "lstm", "gru"]),
    st.integers(1, 9),
    st.one_of(st.integers(-2, 12), WILD),
    st.one_of(st.integers(-2, 12), WILD),
)
def test_tbptt_gradients_bad_k1_k2(cell, n, k1, k2):
    """Any k1, k2: a ValueError, or one finite gradient per parameter; TBPTT(n, n) is full BPTT."""
    from bptt_core import bptt_gradients, tbptt_gradients

    torch.manual_seed(0)
    rnn = {"rnn": lambda: ElmanRNN(2, 3), "lstm": lambda: nn.LSTM(2, 3), "gru": lambda: nn.GRU(2, 3)}[cell]().double()
    readout = nn.Linear(3, 1).double()
    x, y = torch.randn(n, 2, dtype=torch.float64), torch.randn(n, 1, dtype=torch.float64)
    grads = only_value_errors(tbptt_gradients, rnn, readout, x, y, k1, k2)
    if grads is None:
        return
    params = [*rnn.parameters(), *readout.parameters()]
    assert len(grads) == len(params)
    assert all(g.shape == p.shape and torch.isfinite(g).all() for g, p in zip(grads, params, strict=True))
    if int(k1) == int(k2) == n:
        for g, r in zip(grads, bptt_gradients(rnn, readout, x, y), strict=True):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


CALC_FIELDS = {
    "cell": st.sampled_from(CELLS),
    "input_size": st.integers(1, 6),
    "hidden_size": st.integers(1, 8),
    "output_size": st.integers(1, 4),
    "seq_len": st.integers(1, 30),
    "batch_size": st.integers(1, 16),
    "num_layers": st.integers(1, 3),
    "lr": st.floats(1e-4, 1.0),
    "truncation": st.one_of(st.none(), st.integers(1, 30)),
    "activation": st.sampled_from(ACTIVATIONS),
    "init": st.sampled_from(INITS),
    "gain": st.floats(0.1, 3.0),
}


@st.composite
def calc_kwargs(draw):
    """Mostly valid settings (so that estimates are made and checked), a wild value now and then."""
    optional = ("num_layers", "lr", "truncation", "activation", "init", "gain")
    kw = {}
    for name, valid in CALC_FIELDS.items():
        choice = draw(st.sampled_from(["valid"] * 14 + ["wild"] + ["absent"] * (name in optional)))
        if choice != "absent":
            kw[name] = draw(valid if choice == "valid" else WILD)
    if kw.get("cell") not in ("rnn", None) and kw.get("activation") in ACTIVATIONS and draw(st.integers(0, 4)):
        kw["activation"] = "tanh"  # the gated cells' only activation; other values are refused
    for name in ("cell", "input_size", "hidden_size", "output_size", "seq_len", "batch_size"):
        kw.setdefault(name, draw(CALC_FIELDS[name]))
    return kw


def torch_param_count(cell, I, H, O, layers) -> int:
    if cell in ("rnn", "lstm", "gru"):
        rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H, num_layers=layers)
    else:  # the diagonal cells: one layer, counted on the module itself
        from bptt_core.models.recurrent import make_rnn

        rnn = make_rnn(cell, I, H)
    return sum(p.numel() for p in rnn.parameters()) + sum(p.numel() for p in nn.Linear(H, O).parameters())


@settings(PROFILE, max_examples=100)
@given(calc_kwargs())
def test_estimate_raises_only_value_error_and_counts_exactly(kw):
    from bptt_core.learning.calculator import estimate

    est = only_value_errors(estimate, **kw, measure_time=False)
    event("refused" if est is None else "estimated")
    if est is None:
        return
    s = est.settings
    assert est.total_params == torch_param_count(
        s["cell"], s["input_size"], s["hidden_size"], s["output_size"], s["num_layers"]
    )
    assert isinstance(est.activation_bytes, int) and est.activation_bytes > 0
    assert (
        math.isfinite(est.sigma1)
        and math.isfinite(est.rho)
        and est.risk in ("vanishing", "exploding", "neither", "unknown")
    )
    assert math.isnan(est.decay_rate) or math.isfinite(est.decay_rate)
    assert (est.risk == "unknown") <= math.isnan(est.decay_rate)  # unknown only without a measured rate
    assert isinstance(est.total_memory_bytes, int) and est.total_memory_bytes > 0
