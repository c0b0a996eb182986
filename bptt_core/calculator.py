"""The BPTT calculator: what a recurrent model costs to train, and whether its gradients will flow.

Every number says how it was obtained:

- **exact**: parameter counts, from the shapes of torch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``
  plus an ``nn.Linear`` readout.
- **estimated** (a formula checked against measurement): the bytes autograd holds for backward,
  derived from how PyTorch's CPU kernels save tensors (the tests hold every formula within 25% of
  :func:`bptt_core.memory.saved_tensor_bytes` on a grid); FLOPs per sequence.
- **measured** on this machine, now: the vanishing/exploding verdict of Pascanu, Mikolov & Bengio
  (2013) from the actually initialised W_hh (sigma_1 against 1/gamma, rho), the decay rate of
  ||d h_t / d h_s|| and the memory horizon (the recommended truncation), and the time of a real
  forward + backward + SGD step.

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

import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch
from torch import nn

from .config import (
    ACTIVATIONS,
    CELLS,
    DIAGONAL_CELLS,
    INITS,
    MAX_BATCH,
    MAX_GAIN,
    MAX_HIDDEN,
    MAX_INPUT,
    MAX_SEQ_LEN,
    check_choice,
    check_float,
    check_int,
    state_size,
)
from .init import initialise
from .jacobians import decay_rate, jacobian_log_norms, memory_horizon
from .models import ElmanRNN, make_rnn
from .spectra import spectrum
from .verdicts import RATE_TOLERANCE, gradient_verdict

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MAX_LAYERS = 8
MAX_DATASET = 10**9
MAX_LR = 100.0
FLOAT_BYTES = 4
PAGE = 4096  # oneDNN rounds every workspace part up to a page
HORIZON_THRESHOLD = 1e-3  # memory horizon: where ||d h_t / d h_{t-k}|| fell 1000-fold
JACOBIAN_FLOP_BUDGET = 1e10  # keeps the measured decay rate well under a second
TIMING_SECONDS = 0.3  # budget for the measured training steps
TIMING_FLOP_BUDGET = 2e9  # a longer timed step is measured on fewer time steps and scaled by T
# Elementwise FLOPs per hidden unit and step (gate nonlinearities, products, bias adds): rough.
ELEMENTWISE_PER_UNIT = {"rnn": 4, "gru": 16, "lstm": 20, "mingru": 8, "minlstm": 14, "ssm": 14, "lru": 16}


# -- exact ---------------------------------------------------------------------------------------


def diagonal_cell_params(cell: str, input_size: int, hidden_size: int) -> int:
    """Parameters of the diagonal cells of :mod:`bptt_core.cells` (the tests hold them to numel)."""
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
) -> int:
    """Bytes autograd holds for backward after one forward pass of RNN + readout (no loss)."""
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
) -> int:
    """What the formula estimates, measured: saved_tensor_bytes of RNN + readout, parameters excluded."""
    from .memory import saved_tensor_bytes

    rnn, readout = torch_model(cell, input_size, hidden_size, output_size, num_layers, activation)
    x = torch.randn(seq_len, batch_size, input_size)

    def forward():
        out, _ = rnn(x)
        return readout(out)

    return saved_tensor_bytes(forward, exclude=[*rnn.parameters(), *readout.parameters()])


def diagonal_activation_bytes(
    cell: str, input_size: int, hidden_size: int, output_size: int, seq_len: int, batch_size: int, *_
) -> int:
    """Bytes autograd holds for backward after one forward of a diagonal cell + readout, measured.

    Measured with ``saved_tensors_hooks`` at batch 1 and 2 and extended linearly to ``batch_size``
    (every saved tensor of these cells is per sequence, so the bytes are affine in the batch; the
    tests check the extension against a direct measurement), so no estimate runs a huge batch."""
    one, two = (measured_activation_bytes(cell, input_size, hidden_size, output_size, seq_len, b) for b in (1, 2))
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


# -- the estimate ---------------------------------------------------------------------------------


@dataclass
class Row:
    quantity: str
    value: object
    unit: str
    kind: str  # exact | measured | estimated | setting
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
    flops_forward: float  # estimated, per sequence
    flops_per_sequence: float  # estimated, forward + backward, per sequence
    sigma1: float  # measured on the initialised recurrent matrix
    rho: float
    gamma: float
    risk: str  # "vanishing" | "exploding" | "neither": bptt_core.verdicts, from the measured decay rate
    decay_rate: float  # measured, log10 per step of ||d h_t / d h_{t-k}|| against k
    memory_horizon: int | None  # measured, in steps, or None if not within the window
    horizon_window: int  # the steps the decay rate and horizon were measured over
    recommended_truncation: int | None
    step_seconds: float | None  # measured: one forward + backward + SGD step on a batch
    epoch_seconds: float | None  # step_seconds x ceil(dataset_size / batch_size)
    update_ratio: float | None  # measured: lr ||g|| / ||theta|| of the first step
    rows: list[Row] = field(default_factory=list, repr=False)

    def table(self) -> pd.DataFrame:
        """quantity, value, unit, kind (exact / measured / estimated / setting), how."""
        return pd.DataFrame([asdict(r) for r in self.rows], columns=["quantity", "value", "unit", "kind", "how"])


def _check(cell, input_size, hidden_size, output_size, seq_len, batch_size, num_layers, lr, truncation,
           dataset_size, activation, init, gain) -> dict:  # fmt: skip
    check_choice("cell", cell, CELLS)
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
    )
    if cell in DIAGONAL_CELLS and s["num_layers"] != 1:
        raise ValueError(f"num_layers must be 1 for the {cell} cell (stacking is offered for rnn, lstm, gru)")
    if cell != "rnn" and activation != "tanh":
        raise ValueError(
            f"activation must be 'tanh' for the {cell} cell (other activations are for cell 'rnn'); got {activation!r}"
        )
    return s


def _measure_gradient_flow(s: dict, seed: int) -> dict:
    """Spectrum, decay rate and memory horizon of the initialised first layer on Gaussian input."""
    rnn = make_rnn(s["cell"], s["input_size"], s["hidden_size"], s["activation"])
    initialise(rnn, s["init"], s["gain"], 0.0, seed)
    spec = spectrum(rnn)
    # The diagonal cells' fast path costs ~ T^2 H: the same cap is generous for them.
    S = state_size(s["cell"], s["hidden_size"]) if s["cell"] not in DIAGONAL_CELLS else s["hidden_size"] ** (1 / 3)
    # The exact product chain costs ~ S^3 T^2 FLOPs: cap the window to stay fast.
    window = min(s["seq_len"], max(2, int(math.sqrt(JACOBIAN_FLOP_BUDGET / S**3))))
    x = torch.randn(window, s["input_size"], generator=torch.Generator().manual_seed(seed + 3))  # (T, I)
    L = jacobian_log_norms(rnn, x)  # (T, T)
    rate = decay_rate(L)
    horizon = memory_horizon(L, HORIZON_THRESHOLD) if window > 1 else None
    return dict(spec=spec, rate=rate, horizon=horizon, window=window)


def _risk(spec, rate: float, cell: str) -> str:
    """The Spectrum and Gradient flow pages' verdict (bptt_core.verdicts), on the calculator's numbers."""
    return gradient_verdict(spec.gamma, spec.sigma1, rate, cell=cell).risk


def timed_steps(s: dict) -> int:
    """How many of the seq_len time steps the timed training step runs (all, unless that is slow)."""
    _, per_seq = flops_per_sequence(
        s["cell"], s["input_size"], s["hidden_size"], s["output_size"], s["seq_len"], s["num_layers"]
    )
    per_step = per_seq * s["batch_size"] / s["seq_len"]
    return max(1, min(s["seq_len"], int(TIMING_FLOP_BUDGET // per_step)))


def _time_step(s: dict, seed: int) -> tuple[float, float]:
    """Median seconds of a real forward + backward + SGD step, and lr ||g|| / ||theta|| at step 0.

    A step whose estimated cost exceeds TIMING_FLOP_BUDGET is timed on fewer time steps and scaled
    linearly to seq_len (the cost of BPTT is linear in the sequence length).
    """
    torch.manual_seed(seed)
    T = timed_steps(s)
    rnn, readout = torch_model(
        s["cell"], s["input_size"], s["hidden_size"], s["output_size"], s["num_layers"], s["activation"]
    )
    params = [*rnn.parameters(), *readout.parameters()]
    opt = torch.optim.SGD(params, lr=s["lr"])
    gen = torch.Generator().manual_seed(seed + 4)
    x = torch.randn(T, s["batch_size"], s["input_size"], generator=gen)  # (T, B, I)
    y = torch.randn(T, s["batch_size"], s["output_size"], generator=gen)  # (T, B, O)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = ((readout(out) - y) ** 2).sum() / s["batch_size"]
        loss.backward()
        g = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
        opt.step()
        return g

    theta = float(torch.nn.utils.get_total_norm([p.detach() for p in params]))
    start = time.perf_counter()
    g0 = step()  # warm-up (allocations, oneDNN primitive creation), and the first gradient
    at_least = 2 if time.perf_counter() - start < TIMING_SECONDS else 1  # a slow step: time just one more
    times, start = [], time.perf_counter()
    while len(times) < 5 and (len(times) < at_least or time.perf_counter() - start < TIMING_SECONDS):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    scale = s["seq_len"] / T
    return statistics.median(times) * scale, s["lr"] * g0 / theta if theta > 0 else float("nan")


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
    measure_time: bool = True,
    seed: int = 0,
) -> Estimate:
    """Parameters, activation memory (full BPTT and a truncation window), FLOPs, gradient-flow risk,
    a recommended truncation and the time per epoch of a model torch's nn.RNN / LSTM / GRU with
    a linear readout. Bad settings raise ValueError naming the setting and its allowed range.

    ``truncation``: k of TBPTT(k, k), in [1, seq_len]; None for full BPTT only. ``activation`` is
    for cell "rnn" (torch's nn.RNN for tanh / relu, ElmanRNN for sigmoid / linear). ``init`` and
    ``gain`` initialise the W_hh whose risk is read off (first layer). ``measure_time=False``
    skips the timed training steps.
    """
    s = _check(cell, input_size, hidden_size, output_size, seq_len, batch_size, num_layers, lr, truncation,
               dataset_size, activation, init, gain)  # fmt: skip
    seed = check_int("seed", seed, 0, 2**31 - 1)
    I, H, O, T, B, nl = input_size, hidden_size, output_size, seq_len, batch_size, num_layers
    act = activation if cell == "rnn" else "tanh"
    rec, ro = recurrent_params(cell, I, H, nl), readout_params(H, O)
    memory = diagonal_activation_bytes if cell in DIAGONAL_CELLS else activation_bytes
    mem = memory(cell, I, H, O, T, B, nl, act)
    mem_k = memory(cell, I, H, O, truncation, B, nl, act) if truncation else None
    f_fwd, f_all = flops_per_sequence(cell, I, H, O, T, nl)
    flow = _measure_gradient_flow(s, seed)
    spec, rate, horizon, window = flow["spec"], flow["rate"], flow["horizon"], flow["window"]
    step_s = ratio = epoch_s = None
    if measure_time:
        step_s, ratio = _time_step(s, seed)
        epoch_s = step_s * math.ceil(dataset_size / batch_size)
    recommended, rec_how = _recommend(horizon, rate, window, T)
    est = Estimate(
        settings={**s, "activation": act, "seed": seed},
        total_params=rec + ro,
        recurrent_params=rec,
        readout_params=ro,
        activation_bytes=mem,
        tbptt_activation_bytes=mem_k,
        flops_forward=f_fwd,
        flops_per_sequence=f_all,
        sigma1=spec.sigma1,
        rho=spec.rho,
        gamma=spec.gamma,
        risk=_risk(spec, rate, s["cell"]),
        decay_rate=rate,
        memory_horizon=horizon,
        horizon_window=window,
        recommended_truncation=recommended,
        step_seconds=step_s,
        epoch_seconds=epoch_s,
        update_ratio=ratio,
    )
    est.rows = _rows(est, spec, rec_how)
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


def _rows(e: Estimate, spec, rec_how: str) -> list[Row]:
    s = e.settings
    layer = "first layer's " if s["num_layers"] > 1 else ""
    oned = " (oneDNN workspace)" if s["cell"] == "lstm" and onednn_enabled() else ""
    diagonal = s["cell"] in DIAGONAL_CELLS
    param_how = (
        f"the {s['cell']} cell's parameter shapes (bptt_core.cells), equal to its numel"
        if diagonal
        else f"{GATES[s['cell']]} gate block(s) x H x (I + H) + 2 biases, per layer"
    )
    mem_kind, mem_how = (
        ("measured", "saved_tensors_hooks on a real forward at batch 1 and 2, extended linearly to the batch")
        if diagonal
        else ("estimated", "formula within 25% of saved_tensors_hooks measurement (tested)")
    )
    rows = [
        Row("total parameters", e.total_params, "", "exact", "recurrent module + readout, from the layer shapes"),
        Row(
            "recurrent parameters",
            e.recurrent_params,
            "",
            "exact",
            param_how,
        ),
        Row("readout parameters", e.readout_params, "", "exact", "H x O + O"),
        Row("parameter memory", e.total_params * FLOAT_BYTES, "bytes", "exact", "float32"),
        Row(
            "activation memory, full BPTT",
            e.activation_bytes,
            "bytes",
            mem_kind,
            f"what PyTorch's CPU kernels save for backward{oned} for a ({s['seq_len']}, {s['batch_size']}, "
            f"{s['input_size']}) batch; {mem_how}",
        ),
    ]
    if e.tbptt_activation_bytes is not None:
        rows.append(
            Row(
                f"activation memory, TBPTT window k = {s['truncation']}",
                e.tbptt_activation_bytes,
                "bytes",
                mem_kind,
                "the same for a k-step window (the graph TBPTT(k, k) holds at once)",
            )
        )
    rows += [
        Row(
            "FLOPs per sequence, forward",
            e.flops_forward,
            "FLOP",
            "estimated",
            "2 G H (I + H) per step and layer for the matmuls + gate elementwise + 2 H O readout",
        ),
        Row(
            "FLOPs per sequence, forward + backward",
            e.flops_per_sequence,
            "FLOP",
            "estimated",
            "backward = 2 x forward (input and weight gradients)",
        ),
        Row(
            f"sigma_1 of {layer}{spec.matrix}",
            e.sigma1,
            "",
            "measured",
            f"largest singular value of the initialised matrix ({s['init']}, gain {s['gain']:g}, seed {s['seed']})",
        ),
        Row(
            "1/gamma",
            1.0 / e.gamma,
            "",
            "exact",
            "bound on |phi'|: sigma_1 < 1/gamma guarantees vanishing (Pascanu et al. 2013)",
        ),
        Row("spectral radius rho", e.rho, "", "measured", "largest |eigenvalue| of the initialised matrix"),
        Row(
            "decay rate",
            e.decay_rate,
            "log10 / step",
            "measured",
            f"slope of mean log10 ||dh_t/dh_(t-k)|| against k, exact Jacobians, over {e.horizon_window} steps of a "
            f"standard Gaussian input (torch seed {e.settings['seed'] + 3}), not the task's sequence: the Gradient flow "
            "page measures on the task's input, so its value differs slightly",
        ),
        Row(
            "gradient risk",
            e.risk,
            "",
            "measured",
            f"the sign of the measured decay rate (|rate| <= {RATE_TOLERANCE:g}: neither); without one, sigma_1 < 1/gamma: "
            "vanishing (bptt_core.verdicts, as on the Spectrum and Gradient flow pages)",
        ),
        Row(
            "memory horizon",
            e.memory_horizon,
            "steps",
            "measured",
            f"first lag k where the gradient norm fell 1000-fold, on the same Gaussian input as the decay rate "
            f"(within {e.horizon_window} steps; None: not reached)",
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
        n_steps = math.ceil(s["dataset_size"] / s["batch_size"])
        rows += [
            Row(
                "time per training step",
                e.step_seconds,
                "s",
                "measured",
                "median of timed forward + backward + SGD steps on this machine, after a warm-up step"
                + (
                    f"; timed on {timed_steps(s)} of {s['seq_len']} time steps and scaled linearly"
                    if timed_steps(s) < s["seq_len"]
                    else ""
                ),
            ),
            Row(
                "time per epoch",
                e.epoch_seconds,
                "s",
                "measured",
                f"time per step x ceil({s['dataset_size']} / {s['batch_size']}) = {n_steps} steps",
            ),
            Row(
                "relative update size",
                e.update_ratio,
                "",
                "measured",
                f"lr ||g|| / ||theta|| at the first step (lr = {s['lr']:g}); ~1e-3 is the usual sweet spot",
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
