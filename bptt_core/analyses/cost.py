"""What a request costs, known before it starts: time and peak memory from its settings alone.

Every computation the dashboard, the HTML report and the command line run has a ``*_cost`` function
here that returns a :class:`Cost` (seconds on one core, peak bytes, and which settings drive it,
most effective first). The formulas are operation counts (multiply-adds of the matrix products,
Python steps of the time loops, bytes of the tensors held) times constants measured on this machine
by ``bench/bench_cost.py`` and stored in ``bptt_core/analyses/cost_constants.json`` (``python
bench/bench_cost.py --write`` measures again and rewrites it). The same script checks the model:
every estimate on its grid lies within :data:`ACCURACY_FACTOR` of the measured time.

What the dashboard does with an estimate (run it at once, in the background, or refuse it) is the
dashboard's policy (``dashboard/budget.py``); the library and the command line print the estimate
before heavy work and go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bptt_core.config import DIAGONAL_CELLS, ModelConfig, Norm, jacobian_bytes, state_size
from bptt_core.flow.plan import FLOW_FLOP_BUDGET, chain_flops, default_method, matrix_flops, split_flops
from bptt_core.units import format_bytes, format_seconds

CONSTANTS_FILE = Path(__file__).with_name("cost_constants.json")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# The diagonal cells (bptt_core.models.cells) are not calibrated: they are costed as the calibrated cell of the same
# width whose work per unit is at least theirs (they have no H x H recurrence), so their estimates err high.
CALIBRATED_AS = {
    "rnn": "rnn",
    "gru": "gru",
    "lstm": "lstm",
    "lru": "gru",
    "mingru": "gru",
    "minlstm": "lstm",
    "ssm": "lstm",
}


def calibrated(cell: str) -> str:
    return CALIBRATED_AS.get(cell, "lstm")


MEMORY_HEADROOM = 1.5  # measured peaks vary with the allocator's state: estimate above them
ACCURACY_FACTOR = 3.0  # bench_cost.py and tests/analyses/test_cost.py: estimate / measured within [1/3, 3]


@dataclass(frozen=True)
class Cost:
    """The estimated cost of one computation."""

    what: str  # what is computed, for messages
    seconds: float  # estimated wall-clock seconds on one core
    bytes: int  # estimated peak memory
    lower: tuple[str, ...] = ()  # the settings that reduce it, most effective first
    alternative: str = ""  # another way to make it cheaper ("use the Frobenius norm")

    def describe(self) -> str:
        return f"{self.what}: about {format_seconds(self.seconds)}, {format_bytes(self.bytes)}"

    def __add__(self, other: Cost) -> Cost:
        lower = tuple(dict.fromkeys(self.lower + other.lower))
        alternative = self.alternative or other.alternative
        return Cost(self.what, self.seconds + other.seconds, max(self.bytes, other.bytes), lower, alternative)


# -- the measured constants --------------------------------------------------------------------------

DEFAULT_CONSTANTS = {  # used when cost_constants.json is missing a value; see bench/bench_cost.py
    "flow_split_s_per_flop": 2e-10,
    "flow_chain_fro_s_per_flop": 1e-10,
    "flow_chain_2_s_per_flop": 1e-9,
    "flow_split_s_per_step": 1e-4,
    "flow_chain_fro_s_per_step": 1e-4,
    "flow_chain_2_s_per_step": 1e-4,
    "train_s_per_flop": {"rnn": 2e-10, "gru": 2e-10, "lstm": 2e-10},
    "train_s_per_step": {"rnn": 4e-4, "gru": 7e-4, "lstm": 8e-4},
    "train_s_fixed": 1e-3,
    "train_saved_floats_per_unit": {"rnn": 11, "gru": 35, "lstm": 45},
    "train_peak_floats_per_unit": {"rnn": 4, "gru": 8, "lstm": 8},
    "compare_factor": 1.0,
    "rtrl_s_per_flop": 1e-9,
    "lyapunov_s_per_flop": 1e-9,
    "lyapunov_s_per_step": 1e-4,
    "fixed_bytes": 64 * 2**20,
}


def _load_constants() -> dict:
    c = dict(DEFAULT_CONSTANTS)
    try:
        c.update(json.loads(CONSTANTS_FILE.read_text())["constants"])
    except (OSError, ValueError, KeyError):
        pass
    return c


K = _load_constants()
MODEL_KNOBS = ("the sequence length T", "the hidden units H")


# -- gradient flow, spectrum, Lyapunov ---------------------------------------------------------------


def flow_method(norm, T: int, S: int) -> str:
    """'split', 'chain_fro' or 'chain_2': the engine's method for this size (jacobians.default_method)."""

    spectral = Norm.of(norm) is Norm.SPECTRAL
    method = default_method(Norm.of(norm), T, S)
    return "split" if method == "split" else ("chain_2" if spectral else "chain_fro")


def flow_flops(method: str, T: int, S: int) -> float:

    return split_flops(T, S) if method == "split" else chain_flops(T, S)


def flow_cost(cfg: ModelConfig, norm="fro") -> Cost:
    """The gradient-flow matrix L (T, T) by the method the engine picks for this norm and size."""
    T, S = cfg.seq_len, state_size(cfg.cell, cfg.hidden_size, cfg.num_layers)
    if cfg.cell in DIAGONAL_CELLS:  # the diagonal fast path: ~T^2 S / 2 products of diagonals, either norm
        secs = K["flow_chain_fro_s_per_flop"] * 0.5 * T * T * S + K["flow_chain_fro_s_per_step"] * T
        return Cost(f"The gradient-flow matrix (diagonal fast path, T = {T}, state size {S})", secs,
                    8 * T * T + 8 * T * S + K["fixed_bytes"], MODEL_KNOBS)  # fmt: skip
    m = flow_method(norm, T, S)
    secs = K[f"flow_{m}_s_per_flop"] * flow_flops(m, T, S) + K[f"flow_{m}_s_per_step"] * T
    name = "spectral" if m == "chain_2" else "Frobenius"
    alternative = "use the Frobenius norm (far cheaper)" if m == "chain_2" else ""
    return Cost(f"The gradient-flow matrix ({name} norm, T = {T}, state size {S})", secs, jacobian_bytes(
        cfg.cell, cfg.hidden_size, T), MODEL_KNOBS, alternative)  # fmt: skip


def spectrum_cost(cfg: ModelConfig) -> Cost:
    S = cfg.hidden_size
    secs = K["lyapunov_s_per_flop"] * 10 * S**3 + 1e-3  # eigvals and svdvals of one H x H matrix
    return Cost("The spectrum of W_hh", secs, 8 * 4 * S * S + K["fixed_bytes"], ("the hidden units H",))


def lyapunov_cost(cfg: ModelConfig, max_exponents: int = 64) -> Cost:
    T, S = cfg.seq_len, state_size(cfg.cell, cfg.hidden_size, cfg.num_layers)
    m = min(S, max_exponents)
    secs = K["lyapunov_s_per_flop"] * T * (S * S * m + 2 * S * m * m) + K["lyapunov_s_per_step"] * T
    return Cost("The Lyapunov spectrum", secs, jacobian_bytes(cfg.cell, cfg.hidden_size, T), MODEL_KNOBS)


def loss_gradients_cost(cfg: ModelConfig) -> Cost:
    """||dL/dh_t|| along one sequence: one forward and backward pass."""
    c = _pass_cost(cfg, cfg.seq_len, 1)
    return Cost("The loss gradients", c.seconds, c.bytes, MODEL_KNOBS)


def contributions_cost(cfg: ModelConfig, t: int) -> Cost:
    """The per-step terms of dl_t/dW_hh: t + 1 copies of W_hh and one pass over t + 1 steps."""
    H = cfg.hidden_size
    G = GATES[calibrated(cfg.cell)]
    c = _pass_cost(cfg, t + 1, 1)
    held = (t + 1) * G * H * H * 4 * 3  # the zeros, their gradients and the stacked result
    return Cost("The per-step contributions", c.seconds * 2, c.bytes + held, MODEL_KNOBS)


# -- training --------------------------------------------------------------------------------------


def _sizes(cfg: ModelConfig) -> tuple[int, int, int]:
    from bptt_core.data.tasks import task_input_size, task_output_size  # imports torch: only when a cost is asked

    return (
        task_input_size(cfg.task, cfg.input_size),
        task_output_size(cfg.task, cfg.input_size),
        GATES[calibrated(cfg.cell)],
    )


def step_flops(cfg: ModelConfig, T: int, B: int) -> float:
    """Multiply-adds of one forward and backward pass (backward ~ 2x forward) over T steps, batch B."""
    I, O, G = _sizes(cfg)
    H = cfg.hidden_size
    return 3.0 * T * B * (G * H * (H + I) + H * O)


def _pass_cost(cfg: ModelConfig, T: int, B: int) -> Cost:
    """One forward + backward pass of the training loop (bptt_core.learning.training.batch_loss) over T steps."""
    I, O, _ = _sizes(cfg)
    secs = (
        K["train_s_per_flop"][calibrated(cfg.cell)] * step_flops(cfg, T, B)
        + K["train_s_per_step"][calibrated(cfg.cell)] * T
        + K["train_s_fixed"]
    )
    # The peak measured per float of the (T, B, H) states (bench_cost.measure_memory), with headroom.
    peak = K["train_peak_floats_per_unit"][calibrated(cfg.cell)] * T * B * cfg.hidden_size * 4
    data = T * B * (I + O) * 4
    return Cost("one training step", secs, int(MEMORY_HEADROOM * (peak + data) + K["fixed_bytes"]), MODEL_KNOBS)


def _updates(T: int, k1: int) -> int:
    return len(range(k1, T + 1, k1)) + (1 if T % k1 else 0)


def training_step_cost(cfg: ModelConfig, train_cfg) -> Cost:
    """One training step of :func:`bptt_core.learning.training.train` (full BPTT, or TBPTT(k1, k2) as well)."""
    T, B = cfg.seq_len, train_cfg.batch_size
    c = _pass_cost(cfg, T, B)
    if train_cfg.truncated:  # the full pass (for dL/dh_t) plus one window of k2 steps per update
        k1, k2 = min(train_cfg.k1, T), min(train_cfg.k2, T)
        w = _pass_cost(cfg, _updates(T, k1) * k2, B)
        c = Cost(c.what, c.seconds + w.seconds, c.bytes + w.bytes, c.lower)
    return c


TRAIN_KNOBS = ("the training steps", "the batch size", "the sequence length T", "the hidden units H")


def training_cost(cfg: ModelConfig, train_cfg) -> Cost:
    """:func:`bptt_core.learning.training.train`: one run of ``train_cfg.steps`` steps."""
    step = training_step_cost(cfg, train_cfg)
    return Cost(f"Training ({train_cfg.steps} steps)", step.seconds * train_cfg.steps, step.bytes, TRAIN_KNOBS)


def twins_cost(cfg: ModelConfig, train_cfg) -> Cost:
    """:func:`bptt_core.learning.training.twin_runs`: three runs, one after another (memory of one)."""
    step = training_step_cost(cfg, train_cfg)
    return Cost(
        f"Training the three twins ({train_cfg.steps} steps each, batch {train_cfg.batch_size})",
        3 * step.seconds * train_cfg.steps,
        step.bytes,
        TRAIN_KNOBS,
    )


# -- truncated BPTT comparison -------------------------------------------------------------------------


def comparison_cost(cfg: ModelConfig, k1: int, k2: int, repeats: int = 3) -> Cost:
    """:func:`bptt_core.report.html.comparison_of`: full BPTT, TBPTT(k, k) for k in 10, 20, TBPTT(k1, k2) and
    RTRL (where cheap enough), each timed ``repeats`` times, on one sequence."""
    from bptt_core.learning.truncation import RTRL_COMPARE_MAX_FLOPS, RTRL_MAX_SENSITIVITY_BYTES  # imports torch

    T = cfg.seq_len
    k1, k2 = min(k1, T), min(k2, T)
    pairs = [(k, k) for k in (10, 20) if k <= T and (k, k) != (k1, k2)] + [(k1, k2)]
    secs = (1 + repeats) * _pass_cost(cfg, T, 1).seconds
    mem = _pass_cost(cfg, T, 1).bytes
    for a, b in pairs:
        secs += (repeats + 1) * _pass_cost(cfg, _updates(T, a) * b, 1).seconds  # +1: the memory count
    I, O, G = _sizes(cfg)
    H, S = cfg.hidden_size, state_size(cfg.cell, cfg.hidden_size, cfg.num_layers)
    P = G * H * (H + I + 2)
    rtrl_flops = T * S * S * P  # the sensitivity update per step: S x S times S x P
    rtrl_bytes = S * P * 4
    if rtrl_flops <= RTRL_COMPARE_MAX_FLOPS and rtrl_bytes <= RTRL_MAX_SENSITIVITY_BYTES:
        secs += repeats * K["rtrl_s_per_flop"] * rtrl_flops
        mem = max(mem, 3 * rtrl_bytes + K["fixed_bytes"])
    return Cost("The full BPTT / TBPTT / RTRL comparison", secs * K["compare_factor"], int(mem), MODEL_KNOBS)


# -- calculator, report, command line ------------------------------------------------------------------


def calculator_cost(cell: str, input_size: int, hidden_size: int, output_size: int, seq_len: int,
                    batch_size: int, num_layers: int = 1, measure_time: bool = True,
                    flow_flop_budget: float | None = None) -> Cost:  # fmt: skip
    """:func:`bptt_core.learning.calculator.estimate`: its gradient-flow window (``flow_flop_budget``, by default
    the Gradient flow page's) and timed steps are capped by flop budgets, so this is bounded whatever
    the sizes."""
    from bptt_core.learning.calculator import TIMING_FLOP_BUDGET, TIMING_SECONDS, activation_bytes  # torch

    budget = FLOW_FLOP_BUDGET if flow_flop_budget is None else flow_flop_budget
    if cell in DIAGONAL_CELLS:
        work = 0.5 * seq_len**2 * hidden_size
    else:
        work = matrix_flops("fro", seq_len, state_size(cell, hidden_size, num_layers))
    secs = K["flow_chain_fro_s_per_flop"] * min(budget, work)
    mem = K["fixed_bytes"]
    if measure_time:
        G = GATES[calibrated(cell)]
        per_seq = 3.0 * seq_len * G * hidden_size * (hidden_size + input_size) * num_layers
        step_flops_ = min(TIMING_FLOP_BUDGET, per_seq * batch_size)
        secs += (
            TIMING_SECONDS
            + 3 * K["train_s_per_flop"][calibrated(cell)] * step_flops_
            + K["train_s_per_step"][calibrated(cell)] * 3 * seq_len
        )
        timed_T = max(1, min(seq_len, int(TIMING_FLOP_BUDGET // max(1.0, per_seq * batch_size / seq_len))))
        mem += 2 * activation_bytes(cell, input_size, hidden_size, output_size, timed_T, batch_size, num_layers)
    return Cost("The calculator's measurements", secs, int(mem), ("the batch size", "the sequence length"))


def report_cost(cfg: ModelConfig, norm="fro", k1k2=None, train_cfg=None) -> Cost:
    """:func:`bptt_core.report.html.build_report`: every figure of the pages it includes."""
    c = flow_cost(cfg, norm) + spectrum_cost(cfg) + lyapunov_cost(cfg) + loss_gradients_cost(cfg)
    if norm not in ("fro",):
        c = c + flow_cost(cfg, "fro")  # the spectrum section uses the Frobenius matrix
    if k1k2 is not None:
        c = c + comparison_cost(cfg, *k1k2)
    if train_cfg is not None:
        c = c + twins_cost(cfg, train_cfg)
    return Cost("The HTML report", c.seconds, c.bytes, c.lower, c.alternative)


# -- the training player (bptt_core.learning.player) ---------------------------------------------------------

PLAYER_KNOBS = ("the snapshots kept", "the sequence length T", "the hidden units H")
PLAYER_LYAPUNOV = (
    5  # bptt_core.learning.player.DEFAULT_LYAPUNOV (not imported: that imports torch; a test checks they agree)
)


def player_cost(cfg: ModelConfig, n_snapshots: int) -> Cost:
    """:func:`bptt_core.learning.player.frames` for ``n_snapshots`` snapshots: per snapshot one gradient-flow
    matrix, the top Lyapunov exponents and one backward pass (one snapshot at a time in memory)."""
    one = flow_cost(cfg) + lyapunov_cost(cfg, PLAYER_LYAPUNOV) + loss_gradients_cost(cfg) + spectrum_cost(cfg)
    return Cost(f"The player's {n_snapshots} frames", one.seconds * n_snapshots, one.bytes, PLAYER_KNOBS)


def played_training_cost(cfg: ModelConfig, train_cfg) -> Cost:
    """One training run (:func:`training_cost`) and the player's frames of the snapshots it can keep
    (``train_cfg.snapshots`` evenly spaced, as many clip events when it clips, and the divergence step)."""
    clips = train_cfg.snapshots if train_cfg.clip != "none" else 0
    run, frames = training_cost(cfg, train_cfg), player_cost(cfg, train_cfg.snapshots + clips + 1)
    return Cost(
        f"Training ({train_cfg.steps} steps) and measuring its snapshots",
        run.seconds + frames.seconds,
        max(run.bytes, frames.bytes),
        TRAIN_KNOBS + ("the snapshots kept",),
    )


def report_total_cost(cfg: ModelConfig, norm="fro", k1k2=None, train_cfg=None, cfg_b: ModelConfig | None = None):
    """The report's cost (:func:`bptt_core.analyses.cost.report_cost`) plus, with a model B, B's own analyses and
    A's gradient-flow matrix once more (the compare section recomputes it)."""
    c = report_cost(cfg, norm, k1k2, train_cfg)
    if cfg_b is not None:
        c = c + report_cost(cfg_b, norm, None, train_cfg) + flow_cost(cfg, norm)
    return c
