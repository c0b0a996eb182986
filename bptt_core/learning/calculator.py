"""The BPTT calculator: what a recurrent model costs to train, and whether its gradients will flow.

Every number says how it was obtained:

- **exact**: parameter counts, from the shapes of torch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``
  (or the project's cells) plus an ``nn.Linear`` readout; parameter, gradient and optimiser-state
  bytes as torch stores them (SGD none; momentum one buffer per parameter; Adam exp_avg and
  exp_avg_sq per parameter plus a float32 step counter per parameter tensor).
- **estimated** (a formula checked against measurement): the bytes autograd holds for backward,
  derived from how PyTorch's CPU kernels save tensors (the tests hold every formula within 25% of
  :func:`bptt_core.learning.memory.saved_tensor_bytes` on a grid), for full BPTT, a TBPTT(k) window and
  gradient checkpointing every ceil(sqrt(T)) steps (Chen et al. 2016, "Training deep nets with
  sublinear memory cost": the segment inputs kept, one segment recomputed at a time); the total
  training memory; FLOPs per sequence and per epoch.
- **measured** on this machine, now: the vanishing/exploding verdict (bptt_core.flow.verdicts, Pascanu,
  Mikolov & Bengio 2013) from sigma_1, rho and the decay rate of ||d h_t / d h_s|| with the memory
  horizon (the recommended truncation), computed exactly as the Gradient flow page computes them
  (bptt_core.report.panels.flow_summary) on the given model and input, or on the model the settings build
  (init, gain, spectral radius, layers) and the gaussian task's input; and the time of a real
  forward + backward + optimiser step.

What PyTorch saves for backward (float32, time-major input (T, B, I), h_0 = 0, bytes = 4 x count):

- vanilla RNN (torch's unfused CPU loop; ``ElmanRNN`` for sigmoid / linear saves the same): each
  layer keeps its input (T B I_l) for W_ih's gradient, every h_{t-1} for W_hh's (T + 1 states
  counting h_0 and the last, which the activation keeps as its output; T without an activation).
- GRU (unfused): the input, and per step h_{t-1}, r, z, n, (h_{t-1} - n)... 4 (B, H) tensors plus
  the (B, 3H) hidden-gate buffer: 7 T B H.
- LSTM: on CPU with oneDNN enabled, torch calls oneDNN's RNN primitive, whose training workspace
  (gates, h, states, c states, diff states, each padded to 64-byte rows and 4 KiB pages) is kept
  whole, plus the input, the output and (h_0, c_0, h_T, c_T). Without oneDNN: input + 7 T B H.
- Every layer after the first takes the previous layer's (T, B, H) output as its saved input; the
  readout keeps the last layer's output (shared with the LSTM's own saved output).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from bptt_core.config import (
    ACTIVATIONS,
    CELLS,
    DIAGONAL_CELLS,
    INITS,
    MAX_BATCH,
    MAX_GAIN,
    MAX_HIDDEN,
    MAX_INPUT,
    MAX_JACOBIAN_BYTES,
    MAX_SEED,
    MAX_SEQ_LEN,
    check_choice,
    check_float,
    check_int,
    jacobian_bytes,
    state_size,
)
from bptt_core.data.tasks import make_task
from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.flow.plan import FLOW_FLOP_BUDGET, matrix_flops
from bptt_core.flow.spectra import spectrum
from bptt_core.flow.summary import flow_summary
from bptt_core.flow.verdicts import gradient_verdict
from bptt_core.models.init import initialise
from bptt_core.models.recurrent import ElmanRNN, cell_kind, make_rnn

from .memory import saved_tensor_bytes

if TYPE_CHECKING:  # pandas is optional (the dashboard and figures extras): Estimate.table imports it
    import pandas as pd

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MAX_LAYERS = 8
MAX_DATASET = 10**9
MAX_LR = 100.0
FLOAT_BYTES = 4
PAGE = 4096  # oneDNN rounds every workspace part up to a page
HORIZON_THRESHOLD = 1e-3  # memory horizon: where ||d h_t / d h_{t-k}|| fell 1000-fold
TIMING_SECONDS = 0.3  # budget for the measured training steps
TIMING_FLOP_BUDGET = 2e9  # a longer timed step is measured on fewer time steps and scaled by T
# Elementwise FLOPs per hidden unit and step (gate nonlinearities, products, bias adds): rough.
ELEMENTWISE_PER_UNIT = {"rnn": 4, "gru": 16, "lstm": 20, "mingru": 8, "minlstm": 14, "ssm": 14, "lru": 16}


# -- exact ---------------------------------------------------------------------------------------


def diagonal_cell_params(cell: str, input_size: int, hidden_size: int) -> int:
    """Parameters of the diagonal cells of :mod:`bptt_core.models.cells` (the tests hold them to numel)."""
    I, H = input_size, hidden_size
    return {
        "mingru": 2 * (H * I + H),  # W_z, b_z, W_h, b_h
        "minlstm": 3 * (H * I + H),  # W_f, b_f, W_i, b_i, W_h, b_h
        "lru": 3 * H + 3 * H * I + 2 * H * H,  # nu, theta, gamma; B_re, B_im, D; C_re, C_im
        "ssm": 4 * H * I + 5 * H,  # W_delta, W_B, W_C, W_u; b_delta, b_B, b_C, A_log, D
    }[cell]


def recurrent_params(cell: str, input_size: int, hidden_size: int, num_layers: int = 1) -> int:
    """Parameters of torch's nn.RNN / LSTM / GRU(input_size, hidden_size, num_layers), with biases,
    or of a diagonal cell (one layer)."""
    if cell in DIAGONAL_CELLS:
        return diagonal_cell_params(cell, input_size, hidden_size)
    G, H = GATES[cell], hidden_size
    per_layer = [G * H * (input_size + H) + 2 * G * H] + [G * H * (H + H) + 2 * G * H] * (num_layers - 1)
    return sum(per_layer)


def readout_params(hidden_size: int, output_size: int) -> int:
    return hidden_size * output_size + output_size


# -- activation memory ----------------------------------------------------------------------------


def _good_ld(dim: int) -> int:
    """oneDNN's row stride for float32: 64-byte aligned, never a multiple of 256 (4K aliasing)."""
    ld = -(-dim // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def _pages(n_bytes: int) -> int:
    return -(-n_bytes // PAGE) * PAGE


def onednn_lstm_workspace_bytes(seq_len: int, batch_size: int, input_size: int, hidden_size: int) -> int:
    """oneDNN's forward-training LSTM workspace for one layer, as torch keeps it for backward.

    Parts (rows of B per step, each part rounded up to a 4 KiB page): gates T x ld(4H); h T x ld(H);
    three state buffers 2 (T + 1) x ld(max(I, H)) (states and their diffs, for this layer and
    the one below); two c-state buffers 2 (T + 1) x H.
    """
    T, B = seq_len, batch_size
    parts = [T * B * _good_ld(4 * hidden_size), T * B * _good_ld(hidden_size)]
    parts += [2 * (T + 1) * B * _good_ld(max(input_size, hidden_size))] * 3
    parts += [2 * (T + 1) * B * hidden_size] * 2
    return sum(_pages(FLOAT_BYTES * p) for p in parts)


def onednn_enabled() -> bool:
    """Whether torch's CPU LSTM runs through oneDNN here (it does for float32 when available)."""
    return bool(torch.backends.mkldnn.is_available() and torch._C._get_mkldnn_enabled())


def activation_bytes(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    seq_len: int,
    batch_size: int,
    num_layers: int = 1,
    activation: str = "tanh",
    onednn: bool | None = None,
    readout: bool = True,
) -> int:
    """Bytes autograd holds for backward after one forward pass of RNN + readout (no loss).

    ``readout=False``: the recurrent module alone (what one recomputed checkpoint segment holds)."""
    T, B, H = seq_len, batch_size, hidden_size
    onednn = onednn_enabled() if onednn is None else onednn
    count = 0  # floats
    extra = 0  # bytes counted directly (page-rounded workspaces)
    for layer in range(num_layers):
        inp = input_size if layer == 0 else H
        count += T * B * inp  # the layer's input, kept for dL/dW_ih
        if cell == "rnn":
            count += (T if activation == "linear" else T + 1) * B * H
        elif cell == "gru" or not onednn:
            count += 7 * T * B * H
        else:
            extra += onednn_lstm_workspace_bytes(T, B, inp, H)
            count += 4 * B * H  # h_0, c_0, h_T, c_T
    if readout or (cell == "lstm" and onednn):
        count += T * B * H  # the last layer's output: the readout's input (the oneDNN LSTM's saved output too)
    return FLOAT_BYTES * count + extra


def torch_model(
    cell: str, input_size: int, hidden_size: int, output_size: int, num_layers: int = 1, activation: str = "tanh"
) -> tuple[nn.Module, nn.Linear]:
    """The model the calculator describes: torch's own module (ElmanRNN layers for sigmoid / linear),
    or the diagonal cell."""
    if cell in DIAGONAL_CELLS:
        rnn = make_rnn(cell, input_size, hidden_size)
    elif cell == "lstm":
        rnn = nn.LSTM(input_size, hidden_size, num_layers)
    elif cell == "gru":
        rnn = nn.GRU(input_size, hidden_size, num_layers)
    elif activation in ("tanh", "relu"):
        rnn = nn.RNN(input_size, hidden_size, num_layers, nonlinearity=activation)
    else:
        rnn = _ElmanStack(input_size, hidden_size, num_layers, activation)
    return rnn, nn.Linear(hidden_size, output_size)


class _ElmanStack(nn.Module):
    """num_layers ElmanRNNs in a row, for the activations torch's nn.RNN does not offer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, activation: str):
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(ElmanRNN(i, hidden_size, activation) for i in sizes)

    def forward(self, x: torch.Tensor):
        for layer in self.layers:
            x, _ = layer(x)
        return x, None


def measured_activation_bytes(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    seq_len: int,
    batch_size: int,
    num_layers: int = 1,
    activation: str = "tanh",
    with_readout: bool = True,
) -> int:
    """What the formula estimates, measured: saved_tensor_bytes of RNN + readout (or the RNN alone),
    parameters excluded."""

    rnn, readout = torch_model(cell, input_size, hidden_size, output_size, num_layers, activation)
    x = torch.randn(seq_len, batch_size, input_size)

    def forward():
        out, _ = rnn(x)
        return readout(out) if with_readout else out

    return saved_tensor_bytes(forward, exclude=[*rnn.parameters(), *readout.parameters()])


def diagonal_activation_bytes(
    cell: str, input_size: int, hidden_size: int, output_size: int, seq_len: int, batch_size: int, *_, readout=True
) -> int:
    """Bytes autograd holds for backward after one forward of a diagonal cell + readout, measured.

    Measured with ``saved_tensors_hooks`` at batch 1 and 2 and extended linearly to ``batch_size``
    (every saved tensor of these cells is per sequence, so the bytes are affine in the batch; the
    tests check the extension against a direct measurement), so no estimate runs a huge batch."""
    one, two = (
        measured_activation_bytes(cell, input_size, hidden_size, output_size, seq_len, b, with_readout=readout)
        for b in (1, 2)
    )
    return one + (batch_size - 1) * (two - one)


# -- FLOPs ------------------------------------------------------------------------------------------


def flops_per_sequence(
    cell: str, input_size: int, hidden_size: int, output_size: int, seq_len: int, num_layers: int = 1
) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs for one sequence, a readout on every step.

    Forward: 2 G H (I_l + H) per step and layer for the two matmuls (a multiply-add is 2 FLOPs),
    plus a rough per-unit count for the gates, plus 2 H O for the readout. Backward: twice the
    forward (the gradients with respect to the inputs and to the weights each cost one matmul
    of the same size), the usual 3x rule for training.
    """
    H = hidden_size
    if cell in DIAGONAL_CELLS:  # input matmuls (and the LRU's 2 H x H output map) + elementwise
        I = input_size
        per_step = {"mingru": 4 * H * I, "minlstm": 6 * H * I, "ssm": 8 * H * I, "lru": 6 * H * I + 4 * H * H}[cell]
        per_step += ELEMENTWISE_PER_UNIT[cell] * H + 2 * H * output_size
        return float(per_step * seq_len), 3.0 * per_step * seq_len
    G = GATES[cell]
    per_step = sum(2 * G * H * ((input_size if layer == 0 else H) + H) for layer in range(num_layers))
    per_step += num_layers * ELEMENTWISE_PER_UNIT[cell] * H + 2 * H * output_size
    forward = float(per_step * seq_len)
    return forward, 3.0 * forward


# -- training memory: optimiser state and gradient checkpointing ----------------------------------

OPTIMIZERS = ("sgd", "momentum", "adam")
MOMENTUM = 0.9  # "momentum" is torch.optim.SGD(momentum=0.9): one momentum_buffer per parameter
STATE_COPIES = {"sgd": 0, "momentum": 1, "adam": 2}  # parameter-sized state tensors the optimiser keeps
STEP_COUNTER_BYTES = 4  # torch's Adam keeps state["step"] as a float32 0-dim tensor per parameter tensor


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """The optimiser the calculator describes: plain SGD, SGD with momentum 0.9, or Adam (torch's defaults)."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM if name == "momentum" else 0.0)


def optimizer_state_bytes(optimizer: str, n_params: int, n_tensors: int) -> int:
    """Bytes of optimiser state after the first step, as torch stores it (float32 parameters).

    SGD: none. Momentum: a momentum_buffer the size of every parameter. Adam: exp_avg and exp_avg_sq
    the size of every parameter, plus a 0-dim float32 step counter for each of the n_tensors
    parameter tensors."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    counters = STEP_COUNTER_BYTES * n_tensors if optimizer == "adam" else 0
    return FLOAT_BYTES * STATE_COPIES[optimizer] * n_params + counters


def checkpoint_every(seq_len: int) -> int:
    """Segment length of gradient checkpointing: ceil(sqrt(T)) steps (Chen et al. 2016, "Training deep
    nets with sublinear memory cost"): ~sqrt(T) boundary states kept, one segment recomputed at a time."""
    return math.isqrt(seq_len - 1) + 1 if seq_len > 1 else 1


def run_module(rnn: nn.Module, x: torch.Tensor, h=None):
    """rnn on a time-major batch x (T, B, I), whatever its batch_first: (out (T, B, H), h_n)."""
    if getattr(rnn, "batch_first", False):
        out, h_n = rnn(x.transpose(0, 1), h)
        return out.transpose(0, 1), h_n
    return rnn(x, h)


def checkpointed_forward(rnn: nn.Module, x: torch.Tensor, every: int) -> torch.Tensor:
    """The recurrent module over x (T, B, I) in segments of ``every`` steps, each under
    torch.utils.checkpoint: only each segment's input state is kept; its activations are recomputed
    during backward. Returns the outputs (T, B, H)."""
    from torch.utils.checkpoint import checkpoint

    outs, h = [], None
    for start in range(0, x.shape[0], every):
        out, h = checkpoint(run_module, rnn, x[start : start + every], h, use_reentrant=False)
        outs.append(out)
    return torch.cat(outs)  # (T, B, H)


def _layer_state(cell: str, hidden_size: int) -> int:
    """Floats of one layer's carried state per sequence: (h, c) for the LSTM, (Re h, Im h) for the LRU."""
    return state_size(cell, hidden_size)


def checkpoint_activation_bytes(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    seq_len: int,
    batch_size: int,
    num_layers: int = 1,
    activation: str = "tanh",
    onednn: bool | None = None,
) -> int:
    """Peak bytes held for backward with checkpointing every c = ceil(sqrt(T)) steps.

    Kept through the whole backward: the input (T B I, saved for the recomputation), the state
    entering every segment but the first (h_0 = 0 is not a tensor), and the readout's input
    (T B H). Added while one segment is recomputed: what the module saves for c steps."""
    T, B = seq_len, batch_size
    c = checkpoint_every(T)
    if cell in DIAGONAL_CELLS:
        return _diagonal_checkpoint_bytes(cell, input_size, hidden_size, output_size, T, B)
    n_segments = -(-T // c)
    held = FLOAT_BYTES * (T * B * input_size + (n_segments - 1) * num_layers * B * _layer_state(cell, hidden_size))
    held += FLOAT_BYTES * T * B * hidden_size
    segment = activation_bytes(
        cell, input_size, hidden_size, output_size, c, B, num_layers, activation, onednn, readout=False
    )
    return held + segment


def _diagonal_checkpoint_bytes(cell: str, input_size: int, hidden_size: int, output_size: int, T: int, B: int) -> int:
    """The diagonal cells' checkpointed bytes, measured like their activations (batch 1 and 2, extended
    linearly): their h_n is a view of the segment's states, so each kept boundary state holds its whole
    segment's (c, B, H) storage, which no shape formula of the state alone would count."""

    c = checkpoint_every(T)
    rnn, readout = torch_model(cell, input_size, hidden_size, output_size)
    params = [*rnn.parameters(), *readout.parameters()]

    def held(b: int) -> int:
        x = torch.randn(T, b, input_size)  # (T, b, I)
        return saved_tensor_bytes(lambda: readout(checkpointed_forward(rnn, x, c)), exclude=params)

    one, two = held(1), held(2)
    segment = diagonal_activation_bytes(cell, input_size, hidden_size, output_size, c, B, readout=False)
    return one + (B - 1) * (two - one) + segment


def flops_per_epoch(flops_training_per_sequence: float, dataset_size: int) -> float:
    """Every sequence once: ceil(N / B) steps of B sequences (the last one short) are N sequences."""
    return flops_training_per_sequence * dataset_size


# -- the estimate ---------------------------------------------------------------------------------


@dataclass
class Row:
    quantity: str
    value: object
    unit: str
    kind: str  # exact | measured | estimated
    how: str


@dataclass
class Estimate:
    """The calculator's answer. ``table()`` lists every number with its unit, kind and method."""

    settings: dict
    total_params: int  # exact: recurrent module + readout
    recurrent_params: int
    readout_params: int
    activation_bytes: int  # estimated: full BPTT, one forward pass of a batch
    tbptt_activation_bytes: int | None  # the same for a k-step window (truncation = k)
    checkpoint_activation_bytes: int  # estimated: peak with checkpointing every checkpoint_every steps
    checkpoint_every: int  # ceil(sqrt(seq_len))
    parameter_bytes: int  # exact, float32
    gradient_bytes: int  # exact: one .grad per parameter
    optimizer_bytes: int  # exact: the optimiser's state after one step, as torch stores it
    total_memory_full: int  # parameters + gradients + optimiser state + activations, full BPTT
    total_memory_tbptt: int | None  # the same with a TBPTT(k, k) window
    total_memory_checkpointing: int  # the same with checkpointing
    total_memory_bytes: int  # the scheme chosen: checkpointing, else TBPTT(k) if truncation, else full BPTT
    flops_forward: float  # estimated, per sequence
    flops_per_sequence: float  # estimated, forward + backward (+ recomputation with checkpointing)
    flops_per_epoch: float  # flops_per_sequence x dataset_size
    sigma1: float  # measured on the recurrent matrix of the model (given, or built from the settings)
    rho: float
    gamma: float
    risk: (
        str  # "vanishing" | "exploding" | "neither" | "unknown": bptt_core.flow.verdicts, from the measured decay rate
    )
    verdict: str  # the verdict's sentences (the same function as the Spectrum and Gradient flow pages)
    decay_rate: float  # measured, log10 per step of ||d h_t / d h_{t-k}|| against k (panels.flow_summary)
    memory_horizon: int | None  # measured, in steps, or None if not within the window
    horizon_window: int  # the steps the decay rate and horizon were measured over
    recommended_truncation: int | None
    step_seconds: float | None  # measured: one forward + backward + optimiser step on a batch
    epoch_seconds: float | None  # step_seconds x ceil(dataset_size / batch_size)
    update_ratio: float | None  # measured: ||theta_1 - theta_0|| / ||theta_0|| of the first step
    rows: list[Row] = field(default_factory=list, repr=False)

    def table(self) -> pd.DataFrame:
        """quantity, value, unit, kind (exact / measured / estimated), how."""
        import pandas as pd  # optional dependency: estimate() itself needs only torch

        return pd.DataFrame([asdict(r) for r in self.rows], columns=["quantity", "value", "unit", "kind", "how"])


def _check(cell, input_size, hidden_size, output_size, seq_len, batch_size, num_layers, lr, truncation,
           dataset_size, activation, init, gain, spectral_radius, optimizer, checkpointing) -> dict:  # fmt: skip
    check_choice("cell", cell, CELLS)
    if not isinstance(checkpointing, (bool, np.bool_)):
        raise ValueError(f"checkpointing must be True or False, got {checkpointing!r}")
    s = dict(
        cell=cell,
        input_size=check_int("input_size", input_size, 1, MAX_INPUT),
        hidden_size=check_int("hidden_size", hidden_size, 1, MAX_HIDDEN),
        output_size=check_int("output_size", output_size, 1, MAX_INPUT),
        seq_len=check_int("seq_len", seq_len, 1, MAX_SEQ_LEN),
        batch_size=check_int("batch_size", batch_size, 1, MAX_BATCH),
        num_layers=check_int("num_layers", num_layers, 1, MAX_LAYERS),
        lr=check_float("lr", lr, 0.0, MAX_LR, lo_open=True),
        truncation=None if truncation is None else check_int("truncation", truncation, 1, seq_len),
        dataset_size=check_int("dataset_size", dataset_size, 1, MAX_DATASET),
        activation=check_choice("activation", activation, ACTIVATIONS),
        init=check_choice("init", init, INITS),
        gain=check_float("gain", gain, 0.0, MAX_GAIN, lo_open=True),
        spectral_radius=check_float(
            "spectral_radius", 0.0 if spectral_radius is None else spectral_radius, 0.0, MAX_GAIN
        ),  # fmt: skip
        optimizer=check_choice("optimizer", optimizer, OPTIMIZERS),
        checkpointing=bool(checkpointing),
    )
    if cell in DIAGONAL_CELLS and s["num_layers"] != 1:
        raise ValueError(f"num_layers must be 1 for the {cell} cell (stacking is offered for rnn, lstm, gru)")
    if cell != "rnn" and activation != "tanh":
        raise ValueError(
            f"activation must be 'tanh' for the {cell} cell (other activations are for cell 'rnn'); got {activation!r}"
        )
    if cell == "rnn" and s["num_layers"] > 1 and activation not in ("tanh", "relu"):
        raise ValueError(
            f"a stacked vanilla RNN is torch's nn.RNN: activation must be tanh or relu, got {activation!r}"
        )
    if cell in DIAGONAL_CELLS and s["spectral_radius"] > 0:
        raise ValueError(
            f"spectral_radius must be 0 for the {cell} cell (its recurrence is a diagonal set by its own "
            f"parameters); got {s['spectral_radius']}"
        )
    return s


def architecture(model: nn.Module) -> dict:
    """cell, input_size, hidden_size, num_layers and activation of a recurrent module."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        cell = cell_kind(model)
    except ValueError as e:
        raise ValueError(f"model: {e}") from None
    return dict(
        cell=cell,
        input_size=int(model.input_size),
        hidden_size=int(model.hidden_size),
        num_layers=int(getattr(model, "num_layers", 1)),
        activation=getattr(model, "nonlinearity", "tanh") if cell == "rnn" else "tanh",
    )


def _check_model(s: dict, model, x, readout) -> None:
    """A given model, input and readout must be the ones the other arguments describe."""
    if model is not None:
        arch = architecture(model)
        for name, value in arch.items():
            if s[name] != value:
                raise ValueError(f"{name}={s[name]!r} does not match the model's {name}={value!r} (model=)")
        if getattr(model, "bidirectional", False) or getattr(model, "proj_size", 0):
            raise ValueError("model must be unidirectional without projection (bidirectional=False, proj_size=0)")
    if x is not None:
        if not isinstance(x, torch.Tensor) or x.shape != (s["seq_len"], s["input_size"]):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (seq_len, input_size) = {(s['seq_len'], s['input_size'])}, "
                             f"got {shape}")  # fmt: skip
        if not torch.isfinite(x).all():
            raise ValueError("x must be finite (no NaN or inf)")
    if readout is not None and (
        not isinstance(readout, nn.Linear)
        or (readout.in_features, readout.out_features) != (s["hidden_size"], s["output_size"])
    ):
        raise ValueError(
            f"readout must be a torch.nn.Linear({s['hidden_size']}, {s['output_size']}) (hidden_size, output_size)"
        )


def flow_window(
    cell: str, hidden_size: int, seq_len: int, num_layers: int = 1, budget: float = FLOW_FLOP_BUDGET
) -> int:
    """The steps the gradient-flow matrix is computed over: all of them, unless that exceeds the
    work ``budget`` (by default the Gradient flow page's: above it that page asks first) or the
    Jacobian engine's memory (then the longest prefix that fits)."""
    S = state_size(cell, hidden_size, num_layers)

    def fits(T: int) -> bool:  # the work as bptt_core.report.html.flow_flops counts it (the diagonal fast path's own)
        cheap = (0.5 * T * T * hidden_size if cell in DIAGONAL_CELLS else matrix_flops("fro", T, S)) <= budget
        return cheap and jacobian_bytes(cell, hidden_size, T, num_layers) <= MAX_JACOBIAN_BYTES

    lo, hi = 1, seq_len
    if fits(hi):
        return hi
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def _gradient_flow(rnn: nn.Module, x: torch.Tensor, s: dict) -> dict:
    """Spectrum, decay rate and memory horizon exactly as the Gradient flow page computes them
    (bptt_core.report.panels.flow_summary of jacobian_log_norms on the same module and input, the chain in
    float64 as report.flow_matrix_of multiplies it, Frobenius norm, the top layer's h, threshold 1e-3),
    over the first ``flow_window`` steps."""
    window = flow_window(s["cell"], s["hidden_size"], s["seq_len"], s["num_layers"], s["flow_flop_budget"])
    spec = spectrum(rnn)
    if window < 2:  # no lag to measure (and a 1-step Jacobian of a huge state costs seconds for nothing)
        return dict(spec=spec, rate=float("nan"), horizon=None, window=window)
    L = jacobian_log_norms(rnn, x[:window], dtype=torch.float64)  # (T, T), the chain in float64 as the page's
    summary = flow_summary(L, spec, s["cell"], HORIZON_THRESHOLD)
    return dict(spec=spec, rate=summary.rate, horizon=summary.horizon, window=window)


def default_model(s: dict) -> tuple[nn.Module, torch.Tensor]:
    """The model the settings describe, initialised as the dashboard builds it (make_rnn, then
    initialise with init, gain, spectral_radius and seed), and the gaussian task's first sequence
    (seed + 2): for the gaussian task, the Gradient flow page's own model and input."""
    rnn = make_rnn(s["cell"], s["input_size"], s["hidden_size"], s["activation"], s["num_layers"])
    initialise(rnn, s["init"], s["gain"], s["spectral_radius"], s["seed"])
    x = make_task("gaussian", s["seq_len"], 1, s["seed"] + 2, s["input_size"]).x[:, 0]  # (T, I)
    return rnn, x


def timed_steps(s: dict) -> int:
    """How many of the seq_len time steps the timed training step runs (all, unless that is slow)."""
    _, per_seq = flops_per_sequence(
        s["cell"], s["input_size"], s["hidden_size"], s["output_size"], s["seq_len"], s["num_layers"]
    )
    per_step = per_seq * s["batch_size"] / s["seq_len"]
    return max(1, min(s["seq_len"], int(TIMING_FLOP_BUDGET // per_step)))


def _time_step(s: dict, seed: int, model: nn.Module | None, readout: nn.Linear | None) -> tuple[float, float]:
    """Median seconds of a real forward + backward + optimiser step, and ||theta_1 - theta_0|| / ||theta_0||.

    The given model (a copy: its weights are not touched) or torch's module for the settings; the
    chosen optimiser; checkpointing every ceil(sqrt(T)) steps when chosen. A step whose estimated cost
    exceeds TIMING_FLOP_BUDGET is timed on fewer time steps and scaled linearly to seq_len (the cost
    of BPTT is linear in the sequence length).
    """
    torch.manual_seed(seed)
    T = timed_steps(s)
    if model is not None:
        rnn = copy.deepcopy(model).float()
        head = copy.deepcopy(readout).float() if readout is not None else nn.Linear(s["hidden_size"], s["output_size"])
    else:
        rnn, head = torch_model(
            s["cell"], s["input_size"], s["hidden_size"], s["output_size"], s["num_layers"], s["activation"]
        )
    params = [*rnn.parameters(), *head.parameters()]
    opt = make_optimizer(s["optimizer"], params, s["lr"])
    gen = torch.Generator().manual_seed(seed + 4)
    x = torch.randn(T, s["batch_size"], s["input_size"], generator=gen)  # (T, B, I)
    y = torch.randn(T, s["batch_size"], s["output_size"], generator=gen)  # (T, B, O)
    every = checkpoint_every(s["seq_len"])

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = checkpointed_forward(rnn, x, every) if s["checkpointing"] else run_module(rnn, x)[0]
        loss = ((head(out) - y) ** 2).sum() / s["batch_size"]
        loss.backward()
        opt.step()

    theta0 = torch.cat([p.detach().flatten() for p in params])
    start = time.perf_counter()
    step()  # warm-up (allocations, oneDNN primitive creation), and the first update
    theta1 = torch.cat([p.detach().flatten() for p in params])
    ratio = float((theta1 - theta0).norm() / theta0.norm()) if float(theta0.norm()) > 0 else float("nan")
    at_least = 2 if time.perf_counter() - start < TIMING_SECONDS else 1  # a slow step: time just one more
    times, start = [], time.perf_counter()
    while len(times) < 5 and (len(times) < at_least or time.perf_counter() - start < TIMING_SECONDS):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * s["seq_len"] / T, ratio


def estimate(
    cell: str,
    input_size: int,
    hidden_size: int,
    output_size: int,
    seq_len: int,
    batch_size: int,
    num_layers: int = 1,
    lr: float = 0.01,
    truncation: int | None = None,
    dataset_size: int = 10000,
    activation: str = "tanh",
    init: str = "pytorch",
    gain: float = 1.0,
    spectral_radius: float | None = 0.0,
    optimizer: str = "sgd",
    checkpointing: bool = False,
    measure_time: bool = True,
    seed: int = 0,
    model: nn.Module | None = None,
    x: torch.Tensor | None = None,
    readout: nn.Linear | None = None,
    flow_flop_budget: float = FLOW_FLOP_BUDGET,
    model_label: str = "the given model",
    input_label: str = "the given input",
) -> Estimate:
    """Parameters, training memory (parameters, gradients, optimiser state and activations for full
    BPTT, a TBPTT window and checkpointing), FLOPs, gradient-flow risk, a recommended truncation and
    the time per epoch of a recurrent model with a linear readout. Bad settings raise ValueError
    naming the setting and its allowed range.

    ``truncation``: k of TBPTT(k, k), in [1, seq_len]; None for full BPTT only. ``activation`` is
    for cell "rnn". ``init``, ``gain`` and ``spectral_radius`` (> 0 rescales W_hh to that rho; 0 or
    None leaves it) initialise the model whose gradient flow is measured, on the gaussian task's
    first sequence. ``optimizer``: "sgd" | "momentum" (SGD, momentum 0.9) | "adam". ``checkpointing``:
    train with gradient checkpointing every ceil(sqrt(seq_len)) steps (the total memory, FLOPs and
    timing follow it). ``measure_time=False`` skips the timed training steps.

    ``model`` (an nn.RNN / LSTM / GRU or a bptt_core cell, e.g. an uploaded one) and ``x`` (its
    (seq_len, input_size) input) replace the built model and the gaussian input: the decay rate and
    memory horizon are then those of the Gradient flow page for that module and input. The other
    arguments must describe the model (cell, sizes, layers, activation), or ValueError says which
    does not. ``readout``: its nn.Linear(hidden_size, output_size), used for the timed steps.
    ``flow_flop_budget``: multiply-adds the gradient-flow matrix may cost; a longer sequence is
    measured on its longest prefix within it (the table says so). ``model_label`` / ``input_label``:
    how the table names a given model and input (e.g. "the uploaded m.pt").
    """
    s = _check(cell, input_size, hidden_size, output_size, seq_len, batch_size, num_layers, lr, truncation,
               dataset_size, activation, init, gain, spectral_radius, optimizer, checkpointing)  # fmt: skip
    s["seed"] = check_int("seed", seed, 0, MAX_SEED)
    s["flow_flop_budget"] = check_float("flow_flop_budget", flow_flop_budget, 0.0, 1e15, lo_open=True)
    s["activation"] = activation if cell == "rnn" else "tanh"
    _check_model(s, model, x, readout)
    I, H, O, T, B, nl, act = input_size, hidden_size, output_size, seq_len, batch_size, num_layers, s["activation"]
    if model is None:
        rnn, x_built = default_model(s)
    else:
        rnn, x_built = model, None
    if x is None:
        x = x_built if x_built is not None else default_model(s)[1]
    s["given_model"], s["given_input"] = model is not None, x_built is None
    s["model_label"], s["input_label"] = str(model_label), str(input_label)
    rec, ro = recurrent_params(cell, I, H, nl), readout_params(H, O)
    if model is not None:  # its own count (a module built with bias=False has fewer)
        rec = sum(p.numel() for p in model.parameters())
    if readout is not None:
        ro = sum(p.numel() for p in readout.parameters())
    n_tensors = len(list(rnn.parameters())) + (len(list(readout.parameters())) if readout is not None else 2)
    memory = diagonal_activation_bytes if cell in DIAGONAL_CELLS else activation_bytes
    mem = memory(cell, I, H, O, T, B, nl, act)
    mem_k = memory(cell, I, H, O, truncation, B, nl, act) if truncation else None
    mem_ck = checkpoint_activation_bytes(cell, I, H, O, T, B, nl, act)
    param_b = FLOAT_BYTES * (rec + ro)
    state_b = param_b + param_b + optimizer_state_bytes(s["optimizer"], rec + ro, n_tensors)
    totals = dict(full=state_b + mem, tbptt=state_b + mem_k if mem_k is not None else None, ckpt=state_b + mem_ck)
    chosen = totals["ckpt"] if s["checkpointing"] else totals["tbptt"] if truncation else totals["full"]
    f_fwd, f_all = flops_per_sequence(cell, I, H, O, T, nl)
    if s["checkpointing"]:
        f_all += f_fwd  # every segment's forward runs again during backward
    flow = _gradient_flow(rnn, x, s)
    spec, rate, horizon, window = flow["spec"], flow["rate"], flow["horizon"], flow["window"]
    verdict = gradient_verdict(spec.gamma, spec.sigma1, rate, cell=cell)
    step_s = ratio = epoch_s = None
    if measure_time:
        step_s, ratio = _time_step(s, s["seed"], model, readout)
        epoch_s = step_s * math.ceil(dataset_size / batch_size)
    recommended, rec_how = _recommend(horizon, rate, window, T)
    est = Estimate(
        settings=s,
        total_params=rec + ro,
        recurrent_params=rec,
        readout_params=ro,
        activation_bytes=mem,
        tbptt_activation_bytes=mem_k,
        checkpoint_activation_bytes=mem_ck,
        checkpoint_every=checkpoint_every(T),
        parameter_bytes=param_b,
        gradient_bytes=param_b,
        optimizer_bytes=state_b - 2 * param_b,
        total_memory_full=totals["full"],
        total_memory_tbptt=totals["tbptt"],
        total_memory_checkpointing=totals["ckpt"],
        total_memory_bytes=chosen,
        flops_forward=f_fwd,
        flops_per_sequence=f_all,
        flops_per_epoch=flops_per_epoch(f_all, dataset_size),
        sigma1=spec.sigma1,
        rho=spec.rho,
        gamma=spec.gamma,
        risk=verdict.risk,
        verdict=verdict.text,
        decay_rate=rate,
        memory_horizon=horizon,
        horizon_window=window,
        recommended_truncation=recommended,
        step_seconds=step_s,
        epoch_seconds=epoch_s,
        update_ratio=ratio,
    )
    est.rows = _rows(est, spec, rec_how, n_tensors)
    return est


def _recommend(horizon: int | None, rate: float, window: int, seq_len: int) -> tuple[int | None, str]:
    drop = -math.log10(HORIZON_THRESHOLD)
    if horizon is not None:
        return horizon, f"measured memory horizon: the first lag where ||dh_t/dh_(t-k)|| fell {10**drop:.0f}-fold"
    if window < seq_len and math.isfinite(rate) and rate < 0 and math.ceil(drop / -rate) <= seq_len:
        k = math.ceil(drop / -rate)
        return k, f"extrapolated from the measured decay rate over {window} steps: {drop:.0f} decades / |rate|"
    return None, (
        f"no memory horizon within seq_len = {seq_len}: gradients from the first step still reach the last "
        f"(at most a {10**drop:.0f}-fold drop); truncating would cut them, use full BPTT"
    )


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} GiB"


OPTIMIZER_HOW = {
    "sgd": "plain SGD keeps no state",
    "momentum": "SGD with momentum 0.9: one momentum_buffer per parameter (4 bytes each)",
    "adam": "Adam: exp_avg and exp_avg_sq per parameter (2 x 4 bytes) + a float32 step counter per parameter tensor",
}


def _rows(e: Estimate, spec, rec_how: str, n_tensors: int) -> list[Row]:
    s = e.settings
    T, B, k, c = s["seq_len"], s["batch_size"], s["truncation"], e.checkpoint_every
    oned = " (oneDNN workspace)" if s["cell"] == "lstm" and onednn_enabled() else ""
    diagonal = s["cell"] in DIAGONAL_CELLS
    param_how = (
        f"numel of {s['model_label']}"
        if s["given_model"]
        else f"the {s['cell']} cell's parameter shapes (bptt_core.models.cells), equal to its numel"
        if diagonal
        else f"{GATES[s['cell']]} gate block(s) x H x (I + H) + 2 biases, per layer ({s['num_layers']})"
    )
    mem_kind, mem_how = (
        ("measured", "saved_tensors_hooks on a real forward at batch 1 and 2, extended linearly to the batch")
        if diagonal
        else ("estimated", "formula within 25% of saved_tensors_hooks measurement (tested)")
    )
    state = "parameters + gradients + optimiser state"
    rows = [
        Row("total parameters", e.total_params, "", "exact", "recurrent module + readout, from the layer shapes"),
        Row("recurrent parameters", e.recurrent_params, "", "exact", param_how),
        Row("readout parameters", e.readout_params, "", "exact", "H x O + O"),
        Row("parameter memory", e.parameter_bytes, "bytes", "exact", "4 bytes (float32) per parameter"),
        Row("gradient memory", e.gradient_bytes, "bytes", "exact", "one float32 .grad per parameter"),
        Row(
            f"optimiser state ({s['optimizer']})",
            e.optimizer_bytes,
            "bytes",
            "exact",
            f"{OPTIMIZER_HOW[s['optimizer']]}; {n_tensors} parameter tensors; as torch stores it after one step",
        ),
        Row(
            "activation memory, full BPTT",
            e.activation_bytes,
            "bytes",
            mem_kind,
            f"what PyTorch's CPU kernels save for backward{oned} for a ({T}, {B}, {s['input_size']}) batch; {mem_how}",
        ),
    ]
    if e.tbptt_activation_bytes is not None:
        rows.append(
            Row(
                f"activation memory, TBPTT window k = {k}",
                e.tbptt_activation_bytes,
                "bytes",
                mem_kind,
                "the same for a k-step window (the graph TBPTT(k, k) holds at once)",
            )
        )
    rows.append(
        Row(
            f"activation memory, checkpointing every {c} steps",
            e.checkpoint_activation_bytes,
            "bytes",
            mem_kind,
            f"torch.utils.checkpoint on segments of ceil(sqrt(T)) = {c} steps: the input, the state entering each of "
            f"{-(-T // c) - 1} later segments and the readout's input, plus one segment recomputed during backward; "
            + ("measured at batch 1 and 2, extended linearly" if diagonal else "within 25% of measurement (tested)"),
        )
    )
    rows.append(
        Row("total training memory, full BPTT", e.total_memory_full, "bytes", mem_kind, f"{state} + activations")
    )
    if e.total_memory_tbptt is not None:
        rows.append(
            Row(
                f"total training memory, TBPTT(k = {k})",
                e.total_memory_tbptt,
                "bytes",
                mem_kind,
                f"{state} + a k-step window's activations",
            )  # fmt: skip
        )
    rows.append(
        Row(
            f"total training memory, checkpointing every {c} steps",
            e.total_memory_checkpointing,
            "bytes",
            mem_kind,
            f"{state} + checkpointed activations",
        )
    )
    scheme = f"checkpointing every {c} steps" if s["checkpointing"] else f"TBPTT(k = {k})" if k else "full BPTT"
    recompute = " + one recomputed forward (checkpointing)" if s["checkpointing"] else ""
    rows += [
        Row(
            "FLOPs per sequence, forward",
            e.flops_forward,
            "FLOP",
            "estimated",
            "2 G H (I + H) per step and layer for the matmuls + gate elementwise + 2 H O readout",
        ),
        Row(
            "FLOPs per sequence, training",
            e.flops_per_sequence,
            "FLOP",
            "estimated",
            f"forward + backward (2 x forward: input and weight gradients){recompute}; trained with {scheme}",
        ),
        Row(
            "FLOPs per epoch",
            e.flops_per_epoch,
            "FLOP",
            "estimated",
            f"per sequence x {s['dataset_size']} sequences (ceil({s['dataset_size']} / {B}) steps of batch {B})",
        ),
    ]
    where = s["model_label"] if s["given_model"] else f"the model built from the settings ({s['init']}, gain " \
        f"{s['gain']:g}" + (f", rho {s['spectral_radius']:g}" if s["spectral_radius"] else "") + f", seed {s['seed']})"  # fmt: skip
    data = s["input_label"] if s["given_input"] else f"the gaussian task's first sequence (seed {s['seed'] + 2})"
    span = f"all {T} steps" if e.horizon_window == T else f"the first {e.horizon_window} of {T} steps (work budget)"
    rows += [
        Row(f"sigma_1 of {spec.matrix}", e.sigma1, "", "measured", f"largest singular value, of {where}"),
        Row(
            "1/gamma",
            1.0 / e.gamma,
            "",
            "exact",
            "bound on |phi'|: sigma_1 < 1/gamma guarantees vanishing (Pascanu et al. 2013)",
        ),  # fmt: skip
        Row("spectral radius rho", e.rho, "", "measured", f"largest |eigenvalue|, of {where}"),
        Row(
            "decay rate",
            e.decay_rate,
            "log10 / step",
            "measured",
            f"slope of mean log10 ||dh_t/dh_(t-k)|| against k, exact Jacobians of {where} on {data}, over {span}; "
            "computed as the Gradient flow page does (bptt_core.report.panels.flow_summary, Frobenius norm, top layer's h)",
        ),
        Row(
            "gradient risk",
            e.risk,
            "",
            "measured",
            f"bptt_core.flow.verdicts, as on the Spectrum and Gradient flow pages: {e.verdict}",
        ),  # fmt: skip
        Row(
            "memory horizon",
            e.memory_horizon,
            "steps",
            "measured",
            f"first lag k where the gradient norm fell 1000-fold (threshold 1e-3), on the same input as the decay "
            f"rate (within {e.horizon_window} steps; None: not reached)",
        ),
        Row(
            "recommended truncation",
            e.recommended_truncation,
            "steps",
            "measured" if e.memory_horizon is not None else "estimated",
            rec_how,
        ),
    ]
    if e.step_seconds is not None:
        n_steps = math.ceil(s["dataset_size"] / B)
        partial = timed_steps(s) < T
        rows += [
            Row(
                "time per training step",
                e.step_seconds,
                "s",
                "measured" if not partial else "estimated",
                f"median of timed forward + backward + {s['optimizer']} steps ({scheme}) on this machine, after a "
                "warm-up step"
                + (f"; timed on {timed_steps(s)} of {T} time steps and scaled linearly" if partial else ""),
            ),
            Row(
                "time per epoch",
                e.epoch_seconds,
                "s",
                "measured" if not partial else "estimated",
                f"time per step x ceil({s['dataset_size']} / {B}) = {n_steps} steps",
            ),
            Row(
                "relative update size",
                e.update_ratio,
                "",
                "measured",
                f"||theta_1 - theta_0|| / ||theta_0|| after the first {s['optimizer']} step (lr = {s['lr']:g}); "
                "~1e-3 is the usual sweet spot",
            ),
        ]
    return rows


def format_bytes(n: float) -> str:
    """Human-readable bytes (KiB / MiB / GiB), for pages and the command line."""
    return _fmt_bytes(n)


__all__ = [
    "Estimate",
    "activation_bytes",
    "estimate",
    "flops_per_sequence",
    "format_bytes",
    "measured_activation_bytes",
    "onednn_lstm_workspace_bytes",
    "readout_params",
    "recurrent_params",
    "torch_model",
]
