"""Validated settings shared by the library, the command line and the dashboard.

Every public entry point funnels its settings through :class:`ModelConfig` (or the ``check_*``
helpers below), so an out-of-range value is refused once, with a ValueError that names the
setting and the allowed range, instead of surfacing later as a NaN matrix or a crash.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from enum import Enum

CELLS = ("rnn", "lstm", "gru", "lru", "mingru", "minlstm", "ssm")
# Diagonal recurrences (bptt_core.models.cells): h_t = a(x_t) * h_{t-1} + b(x_t), diagonal step Jacobians.
DIAGONAL_CELLS = ("lru", "mingru", "minlstm", "ssm")
COMPLEX_CELLS = ("lru",)  # complex state, carried as (Re h, Im h)
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
INITS = (
    "pytorch",  # torch's own U(-1/sqrt(H), 1/sqrt(H))
    "xavier_uniform",  # Glorot & Bengio 2010
    "xavier_normal",
    "kaiming",  # He et al. 2015, fan-in, normal
    "orthogonal",  # Saxe et al. 2013
    "identity",  # IRNN, Le et al. 2015
    "gaussian",  # N(0, g^2/H): eigenvalues fill the disk of radius g (circular law)
    "sparse",  # Pascanu et al. 2013: 15 non-zeros per unit, rescaled to rho = 0.95
)
TASKS = ("gaussian", "adding", "copy", "temporal_order", "sine")
MAX_SEED = 2**31 - 1  # seeds are torch.Generator seeds kept inside a signed 32-bit range

# Limits. The Jacobian engine holds (T, S, S) buffers (S = 2H for an LSTM), so T * S^2 is what
# costs memory.
MAX_HIDDEN = 512
MAX_INPUT = 256
MAX_SEQ_LEN = 2000
MAX_BATCH = 1024
MAX_GAIN = 100.0
MAX_STACK = 8  # num_layers of a model the analyses build
MAX_JACOBIAN_BYTES = 2_000_000_000  # ~2 GB of engine buffers (seq_len * S^2 <= 78M), well inside 24 GiB

# Uploads (bptt_core.files.model_io reads them; kept here so the dashboard's sidebar can state the limits
# without importing torch).
MAX_UPLOAD_BYTES = 50 * 2**20  # 50 MiB: the largest allowed LSTM (H=512, I=256) is 6.3 MB in float32
MODEL_EXTENSIONS = (".pt", ".pth", ".safetensors")
SEQUENCE_EXTENSIONS = (".csv", ".npy")


def check_int(name: str, value, lo: int, hi: int) -> int:
    integral = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral:
        raise ValueError(f"{name} must be a whole number in [{lo}, {hi}], got {value!r:.40}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!s:.40}")
    return value


def check_float(name: str, value, lo: float, hi: float, *, lo_open: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):  # float(10**400) overflows
        raise ValueError(
            f"{name} must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {value!r:.40}"
        ) from None
    bad_lo = value <= lo if lo_open else value < lo
    if not math.isfinite(value) or bad_lo or value > hi:
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}], got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


class Norm(Enum):
    """The matrix norm of ||dh_t/dh_s||: Frobenius (the default) or spectral (the largest singular value).
    Its value is what the public API takes: ``norm="fro"`` or ``norm=2``."""

    FRO = "fro"
    SPECTRAL = 2

    @classmethod
    def of(cls, spelling) -> Norm:
        """The Norm from any spelling a caller, a page, a URL or the command line uses ("fro", 2, "2",
        "spectral", or a Norm); ValueError otherwise. Every entry point converts here, once."""
        if isinstance(spelling, Norm):
            return spelling
        if isinstance(spelling, bool):  # True == 1: never a norm
            raise ValueError(f"norm must be 'fro' or 2, got {spelling!r}")
        found = {"fro": cls.FRO, "2": cls.SPECTRAL, 2: cls.SPECTRAL, "spectral": cls.SPECTRAL}.get(
            spelling if isinstance(spelling, (str, int)) else None
        )
        if found is None:
            raise ValueError(f"norm must be 'fro' or 2, got {spelling!r:.40}")
        return found

    @property
    def label(self) -> str:
        return "Frobenius" if self is Norm.FRO else "spectral"


class Block(Enum):
    """Which block of an LSTM's (h, c) state product the gradient-flow matrix reads: h -> h, or the cell
    state's own c -> c path. Every other cell has only the h block."""

    H = "h"
    C = "c"

    @classmethod
    def of(cls, spelling) -> Block:
        """The Block from "h", "c" or a Block; ValueError otherwise."""
        if isinstance(spelling, Block):
            return spelling
        if spelling not in ("h", "c"):
            raise ValueError(f"block must be 'h' or 'c', got {spelling!r:.40}")
        return cls(spelling)

    @classmethod
    def shown(cls, cell: str, spelling) -> Block:
        """The block a page shows for ``cell``: C only for an LSTM (the one place that decides), else H."""
        block = cls.of(spelling)
        return block if cell == "lstm" else cls.H


def state_size(cell: str, hidden_size: int, num_layers: int = 1) -> int:
    """Size S of the state whose step Jacobian is S x S: (h, c) for an LSTM, (Re h, Im h) for the
    LRU, every layer's state for a stack."""
    return num_layers * (2 * hidden_size if cell in ("lstm", *COMPLEX_CELLS) else hidden_size)


# The engine's peak memory, measured as peak RSS: about 20 bytes per entry of the (T, S, S) step
# Jacobians for the Gram split (float64 J normalised in place, float64 chains, Grams of half the
# steps) and 23 for the chain (float64 J, float32 copy and transpose, two float32 product
# buffers), plus up to ~70 MB of fixed-size chunks. Both constants leave headroom.
JACOBIAN_BYTES_PER_ENTRY = 24
JACOBIAN_FIXED_BYTES = 128 * 2**20
DIAGONAL_CHUNK_BYTES = 64 * 2**20  # the diagonal fast path's (rows, T, H) float64 temporaries


def check_jacobian_memory(cell: str, hidden_size: int, seq_len: int, num_layers: int = 1) -> None:
    """Refuse a gradient-flow matrix whose buffers (seq_len * S^2 * 24 bytes + 128 MiB) exceed the limit."""
    need = jacobian_bytes(cell, hidden_size, seq_len, num_layers)
    if need > MAX_JACOBIAN_BYTES:
        raise ValueError(
            f"hidden_size x seq_len too large for the Jacobian engine: {cell} with hidden_size={hidden_size}, "
            f"seq_len={seq_len} needs {need / 1e9:.1f} GB; the limit is {MAX_JACOBIAN_BYTES / 1e9:.1f} GB "
            f"(seq_len * S^2 * {JACOBIAN_BYTES_PER_ENTRY} bytes + {JACOBIAN_FIXED_BYTES >> 20} MiB, "
            f"S = {state_size(cell, 1, num_layers)} * hidden_size)"
        )


def jacobian_bytes(cell: str, hidden_size: int, seq_len: int, num_layers: int = 1) -> int:
    """Peak memory of the gradient-flow engine for this size (an upper bound, see the constants).

    Diagonal cells take the fast path: (T, H) cumulative sums, the (T, T) result and row chunks of
    at most DIAGONAL_CHUNK_BYTES."""
    if cell in DIAGONAL_CELLS:
        return 8 * (4 * seq_len * hidden_size + 2 * seq_len * seq_len) + DIAGONAL_CHUNK_BYTES + JACOBIAN_FIXED_BYTES
    s = state_size(cell, hidden_size, num_layers)
    return JACOBIAN_BYTES_PER_ENTRY * seq_len * s * s + JACOBIAN_FIXED_BYTES


# The Clipping page's training defaults (bptt_core.learning.training.CLIPPING_STORY), chosen so its story shows
# (tests/learning/test_training.py holds them to it): with the default model (orthogonal tanh, H = 64, T = 50,
# Gaussian task) SGD at this rate explodes without clipping, while c sits above the first steps' gradient
# norms (~200), so the three twins run identically for several steps before clipping first acts, and both
# clipped twins finish. Plain values: the presets read them without importing torch.
CLIPPING_STORY_SETTINGS = dict(steps=100, optimizer="sgd", lr=0.007, batch_size=8, clip_threshold=300.0)
MAX_FORGET_BIAS = 10.0  # sigmoid(10) = 0.99995: beyond it the forget gate is saturated either way


@dataclass(frozen=True)
class ModelConfig:
    """One model plus its input: everything a gradient-flow picture depends on.

    Frozen and made of plain values so it can key ``st.cache_data`` and round-trip through JSON
    and the URL.
    """

    cell: str = "rnn"  # one of CELLS: rnn | lstm | gru | lru | mingru | minlstm | ssm
    activation: str = "tanh"  # vanilla RNN only: tanh | relu | sigmoid | linear
    hidden_size: int = 64  # H, hidden units
    input_size: int = 0  # 0 = whatever the task needs
    seq_len: int = 50  # T, time steps
    init: str = "orthogonal"  # one of INITS, applied to W_hh (and W_ih where it is defined)
    gain: float = 1.0  # multiplies the initialisation (sparse: ignored, spectral_radius rules)
    spectral_radius: float = 0.0  # > 0 rescales W_hh to exactly this rho; 0 = leave as initialised
    seed: int = 0  # seeds weights and data
    task: str = "gaussian"  # one of TASKS: the input sequence (and targets)
    batch_size: int = 1  # sequences per batch (the Jacobian uses the first)
    forget_bias: float = (
        0.0  # LSTM only: added to the forget gate's bias (Gers et al. 2000; 1 per Jozefowicz et al. 2015)
    )
    num_layers: int = 1  # stacked layers (rnn | lstm | gru); the analyses read the top layer's h by default
    r_min: float = 0.0  # LRU only: ring initialisation, r_min <= |lambda| <= r_max (Orvieto et al. 2023)
    r_max: float = 1.0

    def __post_init__(self):
        check_choice("cell", self.cell, CELLS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_int("hidden_size", self.hidden_size, 1, MAX_HIDDEN)
        check_int("input_size", self.input_size, 0, MAX_INPUT)
        check_int("seq_len", self.seq_len, 1, MAX_SEQ_LEN)
        check_choice("init", self.init, INITS)
        check_float("gain", self.gain, 0.0, MAX_GAIN, lo_open=True)
        check_float("spectral_radius", self.spectral_radius, 0.0, MAX_GAIN)
        check_int("seed", self.seed, 0, MAX_SEED)
        check_choice("task", self.task, TASKS)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_float("forget_bias", self.forget_bias, -MAX_FORGET_BIAS, MAX_FORGET_BIAS)
        check_int("num_layers", self.num_layers, 1, MAX_STACK)
        if self.num_layers > 1 and self.cell in DIAGONAL_CELLS:
            raise ValueError(f"num_layers must be 1 for the {self.cell} cell (stacking is offered for rnn, lstm, gru)")
        if self.num_layers > 1 and self.cell == "rnn" and self.activation not in ("tanh", "relu"):
            raise ValueError(
                f"a stacked vanilla RNN is torch's nn.RNN: activation must be tanh or relu, got {self.activation!r}"
            )
        check_float("r_max", self.r_max, 0.0, 1.0, lo_open=True)
        check_float("r_min", self.r_min, 0.0, 1.0)
        if self.r_min >= self.r_max:
            raise ValueError(f"r_min must be below r_max: got r_min={self.r_min}, r_max={self.r_max}")
        for f in fields(self):  # normalise numpy / float-typed ints so equal configs hash equal
            v = getattr(self, f.name)
            if f.type == "int":
                object.__setattr__(self, f.name, int(v))
            elif f.type == "float":
                object.__setattr__(self, f.name, float(v))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**d)
