"""A sweep's grid, as plain data: which settings vary over which values, what is measured, how the grid
is cut into chunks (docs/design.md, "Sweeps").

The landscape view of Poole et al. (2016, "Exponential expressivity in deep neural networks through
transient chaos"), Chen, Pennington & Schoenholz (2018) and Vogt et al. (2022, Lyapunov exponents
across hyperparameters): one or two settings vary over a grid, everything else is fixed, and every
grid point (times several seeds) is one network with its own measures:

- ``lyapunov``: the top Lyapunov exponent lambda_1 in log10 per step, as the Spectrum page shows it;
- ``decay_rate`` and ``memory_horizon`` of ||dh_t/dh_{t-k}||, read off the gradient-flow matrix as on
  the Gradient flow page (Frobenius norm, the h block);
- ``sigma1_gamma``: gamma * sigma_1 of the recurrent matrix (Pascanu, Mikolov & Bengio 2013);
- ``trainability``: the mean loss of the last 10% of a short training run (copy or adding task).

Settings beyond :class:`~bptt_core.config.ModelConfig` (sweep-local, ModelConfig is unchanged):
``input_scale`` multiplies the input sequence (equivalently W_ih); ``bias_scale`` adds
b ~ N(0, bias_scale^2) to every pre-activation (seeded by seed + 3); ``h0_scale`` draws the initial
state from N(0, h0_scale^2) (seed + 4; 0 = the pages' h_0 = 0). No torch here: the command line's
parser and the Phase diagram page read these names without loading it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from bptt_core.config import ModelConfig, check_choice, check_float, check_int, check_jacobian_memory

SWEEP_CELLS = ("rnn", "lstm", "gru")  # what the batched engine stacks (the diagonal cells: not yet)


AXES = ("gain", "spectral_radius", "input_scale", "bias_scale", "hidden_size", "seq_len")


INT_AXES = ("hidden_size", "seq_len")


MEASURES = ("lyapunov", "decay_rate", "memory_horizon", "sigma1_gamma", "trainability")


FLOW_MEASURES = ("decay_rate", "memory_horizon")


TRAIN_TASKS = ("adding", "copy")


MAX_SWEEP_NETWORKS = 100_000  # grid points x seeds in one sweep (documented in docs/command-line.md)


MAX_AXIS_COUNT = 1000  # points along one axis


MAX_SEEDS = 100


MAX_SCALE = 100.0


LYAPUNOV_MAX_EXPONENTS = 64  # what the Spectrum page computes; lambda_1 is its first


DEFAULT_CHUNK = 32  # networks per chunk (one Dask task)


@dataclass(frozen=True)
class Axis:
    """One swept setting: ``count`` evenly spaced values from ``start`` to ``stop`` inclusive."""

    name: str  # one of AXES
    start: float
    stop: float
    count: int

    def __post_init__(self):
        check_choice("axis", self.name, AXES)
        check_int(f"{self.name} count", self.count, 1, MAX_AXIS_COUNT)
        for end in ("start", "stop"):
            check_float(f"{self.name} {end}", getattr(self, end), -1e9, 1e9)
        if self.count == 1 and self.start != self.stop:
            raise ValueError(f"{self.name}: a range {self.start:g}..{self.stop:g} with count 1 is ambiguous")
        if self.name in INT_AXES:
            bad = [v for v in self._raw() if not float(v).is_integer()]
            if bad:
                raise ValueError(
                    f"{self.name} takes whole numbers; {self.start:g}:{self.stop:g}:{self.count} gives {bad[0]:g}"
                )

    def _raw(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.count)

    @property
    def values(self) -> list:
        raw = self._raw()
        return [int(round(v)) for v in raw] if self.name in INT_AXES else [float(v) for v in raw]

    @classmethod
    def parse(cls, text: str, option: str = "--x") -> Axis:
        """'SETTING:START:STOP:COUNT', e.g. 'gain:0.5:3.0:6'."""
        parts = str(text).split(":")
        if len(parts) != 4:
            raise ValueError(f"{option} must be SETTING:START:STOP:COUNT (e.g. gain:0.5:3.0:6), got {text!r}")
        name, start, stop, count = parts
        if name not in AXES:
            raise ValueError(f"{option}: unknown setting {name!r}; sweepable settings: {', '.join(AXES)}")
        try:
            start_f, stop_f = float(start), float(stop)
        except ValueError:
            raise ValueError(f"{option}: START and STOP must be numbers, got {start!r} and {stop!r}") from None
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"{option}: COUNT must be a whole number, got {count!r}") from None
        if n < 1:
            raise ValueError(f"{option}: empty range for {name} (COUNT = {n}); COUNT must be at least 1")
        return cls(name, start_f, stop_f, n)


@dataclass(frozen=True)
class Network:
    """One network of the grid: the model settings and the sweep-local ones."""

    cfg: ModelConfig
    input_scale: float = 1.0
    bias_scale: float = 0.0
    h0_scale: float = 0.0


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: what varies, what is fixed, what is measured, how it is cut into chunks."""

    base: ModelConfig  # every setting that does not vary (cell, activation, init, task, ...)
    x: Axis
    y: Axis | None = None
    seeds: int = 1  # seeds base.seed, base.seed + 1, ...
    measures: tuple = ("lyapunov",)
    input_scale: float = 1.0  # fixed value unless an axis sweeps it
    bias_scale: float = 0.0  # fixed value unless an axis sweeps it
    h0_scale: float = 0.0  # initial state N(0, h0_scale^2); 0 = h_0 = 0 as on the pages
    burn_in: int = 0  # lambda_1: steps not averaged (0 = every step, as the Spectrum page)
    train_task: str = "adding"  # trainability: the task of the short run
    train_steps: int = 30  # trainability: optimiser steps
    train_lr: float = 0.01  # trainability: SGD learning rate
    chunk_size: int = DEFAULT_CHUNK  # networks per chunk

    def __post_init__(self):
        if not isinstance(self.base, ModelConfig):
            raise ValueError(f"base must be a ModelConfig, got {type(self.base).__name__}")
        if self.base.cell not in SWEEP_CELLS or self.base.num_layers != 1:
            raise ValueError(
                f"cell must be one of {', '.join(SWEEP_CELLS)} with one layer for a sweep (the batched engine "
                f"stacks their weight matrices); got {self.base.cell} with {self.base.num_layers} layer(s)"
            )
        if self.y is not None and self.y.name == self.x.name:
            raise ValueError(f"--x and --y sweep the same setting {self.x.name!r}; choose two different settings")
        check_int("seeds", self.seeds, 1, MAX_SEEDS)
        measures = tuple(self.measures)
        if not measures:
            raise ValueError(f"measure: choose at least one of {', '.join(MEASURES)}")
        for m in measures:
            if m not in MEASURES:
                raise ValueError(f"measure: unknown measure {m!r}; choose from {', '.join(MEASURES)}")
        object.__setattr__(self, "measures", measures)
        for name in ("input_scale", "bias_scale", "h0_scale"):
            check_float(name, getattr(self, name), 0.0, MAX_SCALE)
        check_choice("train_task", self.train_task, TRAIN_TASKS)
        check_int("train_steps", self.train_steps, 1, 1000)
        check_float("train_lr", self.train_lr, 0.0, 10.0, lo_open=True)
        check_int("chunk_size", self.chunk_size, 1, 4096)
        shortest = min(self._axis_extremes("seq_len", self.base.seq_len))
        check_int("burn_in", self.burn_in, 0, max(0, shortest - 1))
        if self.base.seed + self.seeds - 1 > 2**31 - 1:
            raise ValueError(f"seeds: seed + seeds - 1 must stay below 2^31, got {self.base.seed} + {self.seeds}")
        n = self.n_networks
        if n > MAX_SWEEP_NETWORKS:
            raise ValueError(
                f"too many networks: {self.grid_shape} grid points x {self.seeds} seeds = {n}; "
                f"the limit is {MAX_SWEEP_NETWORKS} per sweep (split the range)"
            )
        for axis in self.axes:  # both ends through the library's own checks (names the setting)
            for v in (axis.start, axis.stop):
                self.network(**{axis.name: v}, seed=self.base.seed)
        if any(m in FLOW_MEASURES for m in self.measures):
            H = max(self._axis_extremes("hidden_size", self.base.hidden_size))
            T = max(self._axis_extremes("seq_len", self.base.seq_len))
            check_jacobian_memory(self.base.cell, H, T)

    def _axis_extremes(self, name: str, default):
        ends = [(a.start, a.stop) for a in self.axes if a.name == name]
        return [int(v) for v in ends[0]] if ends else [default]

    @property
    def axes(self) -> tuple[Axis, ...]:
        return (self.x,) if self.y is None else (self.x, self.y)

    @property
    def grid_shape(self) -> str:
        return " x ".join(str(a.count) for a in self.axes)

    @property
    def n_points(self) -> int:
        return math.prod(a.count for a in self.axes)

    @property
    def n_networks(self) -> int:
        return self.n_points * self.seeds

    def network(self, seed: int, **values) -> Network:
        """The network at these axis values (ValueError naming a setting out of range)."""
        fixed = {"input_scale": self.input_scale, "bias_scale": self.bias_scale}
        scales = {k: values.pop(k, v) for k, v in fixed.items()}
        for k, v in scales.items():
            check_float(k, v, 0.0, MAX_SCALE)
        cfg = replace(self.base, seed=int(seed), **values)
        return Network(cfg, float(scales["input_scale"]), float(scales["bias_scale"]), self.h0_scale)

    def rows(self) -> list[dict]:
        """The axis values and seed of every network, in table order (y outer, x, then seed)."""
        ys = self.y.values if self.y is not None else [None]
        out = []
        for yv in ys:
            for xv in self.x.values:
                for k in range(self.seeds):
                    row = {self.x.name: xv}
                    if self.y is not None:
                        row[self.y.name] = yv
                    row["seed"] = self.base.seed + k
                    out.append(row)
        return out

    def chunks(self) -> list[range]:
        """Row indices of each chunk: a pure function of the spec (so every run cuts it the same way)."""
        n = self.n_networks
        return [range(i, min(i + self.chunk_size, n)) for i in range(0, n, self.chunk_size)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["measures"] = list(self.measures)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        d = dict(d)
        d["base"] = ModelConfig.from_dict(d["base"])
        d["x"] = Axis(**d["x"])
        d["y"] = Axis(**d["y"]) if d.get("y") else None
        d["measures"] = tuple(d["measures"])
        return cls(**d)
