"""The BPTT calculator: exact parameter counts, memory formulas against saved-tensor measurement,
the risk read off the initialised W_hh, timing, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bptt_core.calculator import (
    activation_bytes,
    estimate,
    flops_per_sequence,
    measured_activation_bytes,
    torch_model,
)
from bptt_core.init import initialise
from bptt_core.memory import saved_tensor_bytes
from bptt_core.models import make_rnn
from bptt_core.spectra import spectrum

CELL_ACTIVATIONS = [
    ("rnn", "tanh"),
    ("rnn", "relu"),
    ("rnn", "sigmoid"),
    ("rnn", "linear"),
    ("gru", "tanh"),
    ("lstm", "tanh"),
]

# (input_size, hidden_size, output_size, num_layers): odd and aligned sizes, oneDNN's padding
# boundaries (H = 64, 65; 4H a multiple of 256), input wider than hidden, stacked layers
PARAM_SIZES = [(1, 1, 1, 1), (3, 8, 2, 1), (7, 33, 5, 1), (100, 64, 10, 1), (4, 65, 4, 2), (16, 128, 3, 3)]

# (input_size, hidden_size, output_size, seq_len, batch_size, num_layers)
MEMORY_SIZES = [
    (1, 1, 1, 1, 1, 1),
    (3, 8, 2, 5, 4, 1),
    (7, 33, 3, 13, 5, 1),
    (4, 64, 4, 50, 16, 1),
    (100, 65, 1, 20, 3, 1),
    (2, 128, 2, 30, 8, 1),
    (3, 16, 2, 7, 3, 2),
    (5, 20, 3, 9, 2, 3),
]

BAD_INPUT = [
    ("cell", dict(cell="transformer")),
    ("input_size", dict(input_size=0)),
    ("hidden_size", dict(hidden_size=0)),
    ("hidden_size", dict(hidden_size=10_000)),
    ("output_size", dict(output_size=0)),
    ("seq_len", dict(seq_len=0)),
    ("batch_size", dict(batch_size=0)),
    ("num_layers", dict(num_layers=0)),
    ("lr", dict(lr=0.0)),
    ("lr", dict(lr=-0.1)),
    ("truncation", dict(truncation=0)),
    ("truncation", dict(truncation=11)),  # longer than seq_len = 10
    ("dataset_size", dict(dataset_size=0)),
    ("activation", dict(activation="gelu")),
    ("activation", dict(cell="lstm", activation="relu")),
    ("init", dict(init="zeros")),
    ("gain", dict(gain=0.0)),
    ("hidden_size", dict(hidden_size=2.5)),
]

BASE = dict(cell="rnn", input_size=3, hidden_size=8, output_size=2, seq_len=10, batch_size=4, measure_time=False)


def _numel(cell, I, H, O, L):
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H, L)
    return sum(p.numel() for p in rnn.parameters()) + sum(p.numel() for p in nn.Linear(H, O).parameters())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("I, H, O, L", PARAM_SIZES)
def test_total_params_equal_numel(cell, I, H, O, L):
    e = estimate(cell, I, H, O, seq_len=3, batch_size=1, num_layers=L, measure_time=False)
    assert e.total_params == _numel(cell, I, H, O, L)
    assert e.recurrent_params + e.readout_params == e.total_params


@pytest.mark.parametrize("cell, act", CELL_ACTIVATIONS)
@pytest.mark.parametrize("I, H, O, T, B, L", MEMORY_SIZES)
def test_activation_bytes_within_25_percent_of_saved_tensors(cell, act, I, H, O, T, B, L):
    predicted = activation_bytes(cell, I, H, O, T, B, L, act)
    measured = measured_activation_bytes(cell, I, H, O, T, B, L, act)
    assert abs(predicted - measured) <= 0.25 * measured, (predicted, measured)


@pytest.mark.filterwarnings("ignore:TF32 acceleration:UserWarning")
@pytest.mark.parametrize("I, H, O, T, B, L", MEMORY_SIZES[:5])
def test_lstm_memory_without_onednn(I, H, O, T, B, L):
    """The unfused CPU LSTM (oneDNN disabled) saves different tensors; the formula follows."""
    with torch.backends.mkldnn.flags(enabled=False):
        measured = measured_activation_bytes("lstm", I, H, O, T, B, L)
    predicted = activation_bytes("lstm", I, H, O, T, B, L, onednn=False)
    assert abs(predicted - measured) <= 0.25 * measured, (predicted, measured)


@pytest.mark.parametrize("cell, act", CELL_ACTIVATIONS)
def test_estimate_memory_full_and_truncated_against_measurement(cell, act):
    I, H, O, T, B, k = 3, 16, 2, 24, 4, 6
    e = estimate(cell, I, H, O, T, B, truncation=k, activation=act, measure_time=False)
    full = measured_activation_bytes(cell, I, H, O, T, B, activation=act)
    assert abs(e.activation_bytes - full) <= 0.25 * full
    # the graph of one k-step window: the model run on k steps from a constant state
    rnn, readout = torch_model(cell, I, H, O, activation=act)
    x = torch.randn(k, B, I)
    window = saved_tensor_bytes(lambda: readout(rnn(x)[0]), exclude=[*rnn.parameters(), *readout.parameters()])
    assert abs(e.tbptt_activation_bytes - window) <= 0.25 * window
    assert e.tbptt_activation_bytes < e.activation_bytes


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_flops_linear_in_length_and_backward_twice_forward(cell):
    f1, t1 = flops_per_sequence(cell, 3, 16, 2, 10)
    f2, t2 = flops_per_sequence(cell, 3, 16, 2, 20)
    assert f2 == 2 * f1 and t1 == 3 * f1
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    assert f1 >= 10 * 2 * G * 16 * (3 + 16)  # at least the two matmuls per step


@pytest.mark.parametrize(
    "init, gain, act, risk", [("orthogonal", 0.5, "tanh", "vanishing"), ("orthogonal", 1.5, "linear", "exploding")]
)
def test_risk_read_off_the_initialised_matrix(init, gain, act, risk):
    e = estimate("rnn", 3, 16, 2, 40, 2, init=init, gain=gain, activation=act, measure_time=False)
    rnn = make_rnn("rnn", 3, 16, act)
    initialise(rnn, init, gain, 0.0, 0)
    spec = spectrum(rnn)
    assert e.sigma1 == pytest.approx(spec.sigma1) and e.rho == pytest.approx(spec.rho)
    assert e.sigma1 == pytest.approx(gain, rel=1e-5)  # orthogonal: every singular value is the gain
    assert e.risk == risk
    if risk == "vanishing":
        # ||dh_t/dh_s|| <= (gain)^k: at least log10(0.5) per step, and a horizon within the sequence
        assert e.decay_rate <= math.log10(0.5) + 1e-6
        assert e.memory_horizon is not None and e.recommended_truncation == e.memory_horizon <= 40
    else:
        assert e.decay_rate == pytest.approx(math.log10(1.5), rel=1e-3)  # linear: exactly W^k
        assert e.memory_horizon is None and e.recommended_truncation is None
        assert "full BPTT" in e.table().set_index("quantity").loc["recommended truncation", "how"]


def test_table_labels_every_number():
    e = estimate("gru", 3, 8, 2, 12, 4, truncation=4, measure_time=False)
    t = e.table()
    assert list(t.columns) == ["quantity", "value", "unit", "kind", "how"]
    assert set(t["kind"]) <= {"exact", "measured", "estimated"}
    assert {"exact", "measured", "estimated"} <= set(t["kind"])
    assert t["how"].str.len().min() > 0
    q = t.set_index("quantity")
    assert q.loc["total parameters", "value"] == e.total_params and q.loc["total parameters", "kind"] == "exact"
    assert "time per epoch" not in q.index  # measure_time=False skips the timing


def test_time_per_epoch_is_a_measured_step_times_steps_per_epoch():
    e = estimate("lstm", 3, 16, 2, 10, 4, dataset_size=100, measure_time=True)
    assert e.step_seconds > 0
    assert e.epoch_seconds == pytest.approx(e.step_seconds * math.ceil(100 / 4))
    assert e.update_ratio > 0
    assert e.table().set_index("quantity").loc["time per epoch", "kind"] == "measured"


@pytest.mark.parametrize("name, change", BAD_INPUT)
def test_bad_input_raises_naming_the_setting(name, change):
    with pytest.raises(ValueError, match=name):
        estimate(**{**BASE, **change})


# -- the diagonal cells: parameters exact, activation memory measured --------------------------------

DIAGONAL = ["lru", "mingru", "minlstm", "ssm"]


@pytest.mark.parametrize("cell", DIAGONAL)
@pytest.mark.parametrize("I, H, O, L", [s for s in PARAM_SIZES if s[3] == 1])
def test_diagonal_cell_params_equal_numel(cell, I, H, O, L):
    e = estimate(cell, I, H, O, seq_len=3, batch_size=1, measure_time=False)
    want = sum(p.numel() for p in make_rnn(cell, I, H).parameters()) + H * O + O
    assert e.total_params == want and e.recurrent_params + e.readout_params == want


@pytest.mark.parametrize("cell", DIAGONAL)
@pytest.mark.parametrize("I, H, O, T, B", [(3, 8, 2, 5, 4), (7, 33, 3, 13, 5), (2, 16, 2, 30, 9)])
def test_diagonal_cell_activation_bytes_are_the_measurement(cell, I, H, O, T, B):
    from bptt_core.calculator import diagonal_activation_bytes

    got = diagonal_activation_bytes(cell, I, H, O, T, B)
    assert got == measured_activation_bytes(cell, I, H, O, T, B)  # the batch extension is exact
    e = estimate(cell, I, H, O, seq_len=T, batch_size=B, truncation=2, measure_time=False)
    assert e.activation_bytes == got and e.tbptt_activation_bytes == diagonal_activation_bytes(cell, I, H, O, 2, B)
    rows = e.table().set_index("quantity")
    assert rows.loc["activation memory, full BPTT", "kind"] == "measured"


@pytest.mark.parametrize("cell", DIAGONAL)
def test_diagonal_cell_estimate_reads_the_flow_and_refuses_stacking(cell):
    e = estimate(cell, 3, 8, 2, seq_len=40, batch_size=2, measure_time=True)
    assert e.step_seconds > 0 and math.isfinite(e.decay_rate) and e.decay_rate <= 0  # contractive: a_t < 1
    assert e.sigma1 <= 1
    with pytest.raises(ValueError, match=f"num_layers must be 1 for the {cell} cell"):
        estimate(cell, 3, 8, 2, seq_len=10, batch_size=1, num_layers=2, measure_time=False)
