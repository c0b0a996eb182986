"""The BPTT calculator (bptt_core.learning.calculator): exact parameter counts, memory formulas against
saved-tensor measurement, the risk read off the measured decay rate, a given model counted as it is, and
only ValueErrors for bad settings (hypothesis and issue 11's fuzzing)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch import nn

from bptt_core.config import ACTIVATIONS, CELLS, INITS
from bptt_core.flow.spectra import spectrum
from bptt_core.flow.verdicts import measured_risk
from bptt_core.learning.calculator import (
    activation_bytes,
    estimate,
    flops_per_sequence,
    measured_activation_bytes,
    torch_model,
)
from bptt_core.learning.memory import saved_tensor_bytes
from bptt_core.models.init import initialise
from bptt_core.models.recurrent import make_rnn
from tests.helpers.calculator import _page_flow
from tests.helpers.hostile import FUZZ, allow_value_errors
from tests.helpers.strategies import PROFILE, WILD, only_value_errors

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
    ("optimizer", dict(optimizer="rmsprop")),
    ("optimizer", dict(optimizer=None)),
    ("checkpointing", dict(checkpointing="yes")),
    ("checkpointing", dict(checkpointing=1)),
    ("spectral_radius", dict(spectral_radius=-1.0)),
    ("spectral_radius", dict(spectral_radius=float("nan"))),
    ("spectral_radius", dict(spectral_radius=1e6)),
    ("spectral_radius", dict(cell="mingru", spectral_radius=0.9)),
    ("activation", dict(num_layers=2, activation="sigmoid")),
    ("model", dict(model="an LSTM")),
    ("model", dict(model=nn.Linear(3, 8))),
    ("hidden_size", dict(model=nn.RNN(3, 16))),  # the model's hidden_size is 16, not 8
    ("cell", dict(model=nn.GRU(3, 8))),
    ("num_layers", dict(model=nn.RNN(3, 8, 2))),
    ("x", dict(x=torch.zeros(9, 3))),  # seq_len is 10
    ("x", dict(x=torch.zeros(10, 4))),
    ("x", dict(x=[[0.0] * 3] * 10)),
    ("x", dict(x=torch.full((10, 3), float("nan")))),
    ("readout", dict(readout=nn.Linear(8, 5))),
    ("flow_flop_budget", dict(flow_flop_budget=0)),
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
    from bptt_core.learning.calculator import diagonal_activation_bytes

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


# -- training memory: parameters + gradients + optimiser state + activations -------------------------

# cell x optimizer x checkpointing x num_layers, small sizes: (cell, optimizer, checkpointing, num_layers)
TRAINING_GRID = [
    (cell, opt, ckpt, layers)
    for cell in ("rnn", "lstm", "gru")
    for opt in ("sgd", "momentum", "adam")
    for ckpt in (False, True)
    for layers in (1, 2)
] + [("mingru", "adam", True, 1), ("lru", "momentum", False, 1), ("ssm", "sgd", True, 1), ("minlstm", "adam", False, 1)]
TRAIN_SIZES = dict(I=3, H=12, O=2, T=17, B=3)  # T = 17: segments of ceil(sqrt 17) = 5 steps, the last one short


def _torch_optimizer(name, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    return torch.optim.Adam(params, lr=0.01)


def _measured_training_bytes(cell, optimizer, checkpointing, layers, I, H, O, T, B):
    """Parameters + .grad + optimiser state after one real step + what autograd holds for backward
    (with checkpointing: the checkpointed forward's saved tensors plus one segment's recompute)."""
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(0)
    rnn, readout = torch_model(cell, I, H, O, layers)
    params = [*rnn.parameters(), *readout.parameters()]
    x, y = torch.randn(T, B, I), torch.randn(T, B, O)
    every = math.ceil(math.sqrt(T))

    def forward():
        if not checkpointing:
            return readout(rnn(x)[0])
        outs, h = [], None
        for a in range(0, T, every):
            out, h = checkpoint(lambda xs, hs: rnn(xs, hs), x[a : a + every], h, use_reentrant=False)
            outs.append(out)
        return readout(torch.cat(outs))

    held = saved_tensor_bytes(forward, exclude=params)
    if checkpointing:  # one segment recomputed during backward (x is held already)
        held += saved_tensor_bytes(lambda: rnn(x[:every])[0], exclude=[*params, x])
    opt = _torch_optimizer(optimizer, params)
    loss = ((forward() - y) ** 2).sum()
    loss.backward()
    opt.step()
    param_b = sum(p.untyped_storage().nbytes() for p in params)
    grad_b = sum(p.grad.untyped_storage().nbytes() for p in params)
    state_b = sum(v.untyped_storage().nbytes() for st in opt.state.values() for v in st.values() if torch.is_tensor(v))
    return dict(params=param_b, grads=grad_b, state=state_b, activations=held)


@pytest.mark.parametrize("cell, optimizer, checkpointing, layers", TRAINING_GRID)
def test_training_memory_against_one_real_step(cell, optimizer, checkpointing, layers):
    z = TRAIN_SIZES
    e = estimate(cell, z["I"], z["H"], z["O"], z["T"], z["B"], num_layers=layers, optimizer=optimizer,
                 checkpointing=checkpointing, measure_time=False)  # fmt: skip
    rnn, readout = torch_model(cell, z["I"], z["H"], z["O"], layers)
    assert e.total_params == sum(p.numel() for p in [*rnn.parameters(), *readout.parameters()])
    m = _measured_training_bytes(cell, optimizer, checkpointing, layers, **z)
    # parameters, gradients and optimiser state are exact
    assert (e.parameter_bytes, e.gradient_bytes, e.optimizer_bytes) == (m["params"], m["grads"], m["state"])
    measured = sum(m.values())
    assert abs(e.total_memory_bytes - measured) <= 0.25 * measured, (e.total_memory_bytes, m)
    want = e.total_memory_checkpointing if checkpointing else e.total_memory_full
    assert e.total_memory_bytes == want
    rows = e.table().set_index("quantity")
    assert rows.loc[f"optimiser state ({optimizer})", "kind"] == "exact"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru"])
@pytest.mark.parametrize("T", [1, 4, 10, 50])
def test_checkpointing_activations_within_25_percent_and_below_full_bptt(cell, T):
    I, H, O, B = 3, 16, 2, 4
    m = _measured_training_bytes(cell, "sgd", True, 1, I, H, O, T, B)["activations"]
    e = estimate(cell, I, H, O, T, B, checkpointing=True, measure_time=False)
    assert e.checkpoint_every == math.ceil(math.sqrt(T))
    assert abs(e.checkpoint_activation_bytes - m) <= 0.25 * m, (e.checkpoint_activation_bytes, m)
    if T >= 50 and cell != "mingru":  # sqrt(T)-sized pieces beat T steps of saved gates once T is long
        assert e.checkpoint_activation_bytes < e.activation_bytes


def test_truncation_total_memory_and_flops_per_epoch():
    e = estimate("gru", 3, 8, 2, 20, 4, truncation=5, dataset_size=103, optimizer="momentum", measure_time=False)
    state = e.parameter_bytes + e.gradient_bytes + e.optimizer_bytes
    assert e.optimizer_bytes == e.parameter_bytes  # one momentum buffer per parameter
    assert e.total_memory_tbptt == state + e.tbptt_activation_bytes == e.total_memory_bytes
    assert e.total_memory_full == state + e.activation_bytes > e.total_memory_tbptt
    fwd, train = flops_per_sequence("gru", 3, 8, 2, 20)
    assert e.flops_per_sequence == train and e.flops_per_epoch == train * 103
    c = estimate("gru", 3, 8, 2, 20, 4, checkpointing=True, dataset_size=103, measure_time=False)
    assert c.flops_per_sequence == train + fwd  # the recomputed forward
    q = c.table().set_index("quantity")
    assert q.loc["FLOPs per epoch", "kind"] == "estimated" and "103 sequences" in q.loc["FLOPs per epoch", "how"]


def test_timing_uses_the_optimiser_and_checkpointing():
    e = estimate("rnn", 3, 8, 2, 16, 2, optimizer="adam", checkpointing=True, dataset_size=10)
    assert e.step_seconds > 0 and e.epoch_seconds == pytest.approx(e.step_seconds * 5)
    how = e.table().set_index("quantity").loc["time per training step", "how"]
    assert "adam" in how and "checkpointing every 4 steps" in how


# -- the gradient flow: spectral radius used, and the same numbers as the Gradient flow page -----------

# (cell, init, gain, spectral_radius, activation, num_layers)
FLOW_GRID = [
    ("rnn", "orthogonal", 1.0, 2.0, "tanh", 1),  # the exploding preset's rho = 2
    ("rnn", "gaussian", 1.0, 0.5, "tanh", 1),
    ("rnn", "orthogonal", 1.0, 1.3, "linear", 1),
    ("rnn", "pytorch", 1.0, 0.0, "relu", 2),
    ("lstm", "orthogonal", 2.0, 0.0, "tanh", 1),
    ("gru", "gaussian", 1.0, 3.0, "tanh", 2),
    ("lru", "pytorch", 1.0, 0.0, "tanh", 1),
]


@pytest.mark.parametrize("cell, init, gain, rho, act, layers", FLOW_GRID)
def test_risk_follows_the_sign_of_the_measured_decay_rate(cell, init, gain, rho, act, layers):
    from bptt_core.data.tasks import make_task
    from bptt_core.flow.jacobians import jacobian_log_norms
    from bptt_core.flow.summary import decay_rate

    I, H, O, T, seed = 3, 16, 2, 40, 5
    e = estimate(cell, I, H, O, T, 2, num_layers=layers, init=init, gain=gain, spectral_radius=rho, activation=act,
                 seed=seed, measure_time=False)  # fmt: skip
    rnn = make_rnn(cell, I, H, act, layers)  # measured here independently of the calculator
    initialise(rnn, init, gain, rho, seed)
    x = make_task("gaussian", T, 1, seed + 2, I).x[:, 0]
    rate = decay_rate(jacobian_log_norms(rnn, x, dtype=torch.float64))  # the chain in float64, as the pages'

    assert e.decay_rate == pytest.approx(rate, abs=1e-9)
    if rho and layers == 1:
        assert e.rho == pytest.approx(rho, rel=1e-5)  # the spectral radius is used
    assert e.risk == ("vanishing" if rate < -0.01 else "exploding" if rate > 0.01 else "neither")
    assert e.risk in e.table().set_index("quantity").loc["gradient risk", "value"]


# ModelConfig settings of the Gradient flow page: tasks other than gaussian, stacked, gated, exploding
PAGE_CONFIGS = [
    dict(cell="rnn", hidden_size=16, seq_len=60, init="orthogonal", spectral_radius=2.0, task="gaussian"),
    dict(cell="lstm", hidden_size=12, seq_len=50, task="adding", forget_bias=1.0),
    dict(cell="gru", hidden_size=10, seq_len=30, num_layers=2, task="copy"),
    dict(cell="rnn", activation="sigmoid", hidden_size=8, seq_len=45, init="gaussian", gain=3.0, task="sine"),
    dict(cell="mingru", hidden_size=8, seq_len=30, task="gaussian", input_size=4),
]


@pytest.mark.parametrize("settings", PAGE_CONFIGS)
def test_given_model_and_input_give_the_gradient_flow_pages_numbers(settings):
    from bptt_core.analyses.numbers import model_and_sequence
    from bptt_core.config import ModelConfig
    from bptt_core.data.tasks import task_input_size, task_output_size

    cfg = ModelConfig(**settings)
    rnn, readout, x, _, _ = model_and_sequence(cfg)
    page = _page_flow(cfg)
    I, O = task_input_size(cfg.task, cfg.input_size), task_output_size(cfg.task, cfg.input_size)
    e = estimate(cfg.cell, I, cfg.hidden_size, O, cfg.seq_len, 8, num_layers=cfg.num_layers, activation=cfg.activation,
                 model=rnn, x=x, readout=readout, measure_time=False)  # fmt: skip
    assert e.horizon_window == cfg.seq_len
    assert e.decay_rate == page.rate  # the same function on the same matrix: equal, not close
    assert e.memory_horizon == page.horizon
    assert e.total_params == sum(p.numel() for p in [*rnn.parameters(), *readout.parameters()])
    if cfg.task == "gaussian" and cfg.cell != "mingru":
        # without a model the calculator builds the page's own model and input for the gaussian task
        d = estimate(cfg.cell, I, cfg.hidden_size, O, cfg.seq_len, 8, num_layers=cfg.num_layers, init=cfg.init,
                     gain=cfg.gain, spectral_radius=cfg.spectral_radius, measure_time=False)  # fmt: skip
        assert (d.decay_rate, d.memory_horizon, d.rho) == (page.rate, page.horizon, e.rho)


def test_uploaded_model_architecture_and_timing_leave_it_untouched():
    from bptt_core.flow.jacobians import jacobian_log_norms
    from bptt_core.report.panels import flow_summary

    torch.manual_seed(3)
    lstm, x = nn.LSTM(3, 16, batch_first=True), torch.randn(25, 3)
    before = [p.detach().clone() for p in lstm.parameters()]
    e = estimate("lstm", 3, 16, 1, 25, 4, model=lstm, x=x, optimizer="adam", dataset_size=8)
    assert e.total_params == sum(p.numel() for p in lstm.parameters()) + 16 + 1  # not the sidebar's model
    s = flow_summary(jacobian_log_norms(lstm, x, dtype=torch.float64), None, "lstm")  # the pages' float64 chain
    assert (e.decay_rate, e.memory_horizon) == (s.rate, s.horizon)
    assert e.step_seconds > 0 and all(torch.equal(a, b) for a, b in zip(before, lstm.parameters(), strict=True))
    assert "the given model" in e.table().set_index("quantity").loc["decay rate", "how"]


def test_a_given_model_without_biases_is_counted_as_it_is():
    gru, head = nn.GRU(3, 8, 2, bias=False), nn.Linear(8, 2, bias=False)
    e = estimate("gru", 3, 8, 2, 12, 2, num_layers=2, model=gru, readout=head, measure_time=False)
    assert (
        e.total_params
        == sum(p.numel() for p in [*gru.parameters(), *head.parameters()])
        == 3 * 8 * (3 + 8) + 3 * 8 * (8 + 8) + 8 * 2
    )
    assert e.gradient_bytes == 4 * e.total_params


# == The calculator's risk and its decay rate ================================================================

# cell x init x gain: the calculator's risk is the sign of its own measured decay rate
RISK_GRID = [
    ("rnn", "orthogonal", 0.5, "tanh"),
    ("rnn", "orthogonal", 1.0, "linear"),
    ("rnn", "orthogonal", 1.5, "linear"),
    ("rnn", "gaussian", 3.0, "tanh"),
    ("lstm", "gaussian", 1.0, "tanh"),
    ("gru", "orthogonal", 1.0, "tanh"),
]


@pytest.mark.parametrize("cell, init, gain, act", RISK_GRID)
def test_calculator_risk_agrees_with_the_sign_of_its_decay_rate(cell, init, gain, act):
    e = estimate(cell, 3, 16, 2, 30, 2, init=init, gain=gain, activation=act, measure_time=False)
    assert e.risk == measured_risk(e.decay_rate)
    if e.risk == "vanishing":
        assert e.decay_rate < 0
    if e.risk == "exploding":
        assert e.decay_rate > 0


# == Hypothesis: only ValueError, and exact counts ===========================================================

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


# == Issue 11: fuzzed estimate arguments =====================================================================


@FUZZ
@given(
    st.sampled_from(["rnn", "lstm", "gru", "RNN", 1, None]),
    *(st.sampled_from([1, 4, 0, -3, 2.5, "4", None, True, float("nan"), 10**12]) for _ in range(5)),
    st.sampled_from(
        [{}, {"lr": float("inf")}, {"truncation": 0}, {"gain": "big"}, {"activation": "swish"}, {"init": 3}]
    ),
)
def test_fuzz_estimate(cell, input_size, hidden_size, output_size, seq_len, batch_size, more):
    from bptt_core import estimate

    allow_value_errors(
        lambda: estimate(cell, input_size, hidden_size, output_size, seq_len, batch_size, measure_time=False, **more)
    )
