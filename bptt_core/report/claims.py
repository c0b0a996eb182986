"""What each preset promises, as measurable statements, and the measurement that checks them.

A preset (dashboard/presets.py) names the classic experiment it reproduces and the claims that
experiment makes: "the top Lyapunov exponent is within ±0.01 log10 per step of 0", "the unclipped
twin diverges". A claim is data (:class:`Claim`: a measure, a comparison, a target); its measure is
computed by the same library functions the pages call (bptt_core/analyses/numbers.py,
bptt_core/learning/training.py), imported when a claim is first measured (they load torch; the presets,
which only declare claims, must not),
so the page shows the claim with the value it really measured beside it (docs/design.md, "Presets"),
and tests/dashboard/test_presets.py checks every claim of every preset, so no preset can drift from its words.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bptt_core.config import ModelConfig
from bptt_core.flow.summary import decay_rate, memory_horizon

OPS = ("<", ">", "<=", ">=", "≈")


@dataclass(frozen=True)
class Claim:
    measure: str  # a key of MEASURES
    op: str  # one of OPS; "≈" means |value - target| <= tolerance
    target: float
    text: str  # the promise in words, as the page shows it
    tolerance: float = 0.0  # for "≈"

    def __post_init__(self):
        if self.measure not in MEASURES:
            raise ValueError(f"measure must be one of {', '.join(MEASURES)}; got {self.measure!r}")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}; got {self.op!r}")

    def holds(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return {
            "<": value < self.target,
            ">": value > self.target,
            "<=": value <= self.target,
            ">=": value >= self.target,
            "≈": abs(value - self.target) <= self.tolerance,
        }[self.op]


@dataclass(frozen=True)
class Checked:
    claim: Claim
    value: float

    @property
    def holds(self) -> bool:
        return self.claim.holds(self.value)

    def value_text(self) -> str:
        label, unit, _ = MEASURES[self.claim.measure]
        v = self.value
        shown = "not finite" if v is None or not math.isfinite(v) else f"{v:.4g}"
        return f"{label} = {shown}{(' ' + unit) if unit else ''}"


def _numbers():
    """bptt_core.analyses.numbers, imported at the first measurement: it loads torch, and the presets,
    which only declare claims, must not (the dashboard's first page opens without torch)."""
    from bptt_core.analyses import numbers

    return numbers


def _training():
    """bptt_core.learning.training, imported at the first measurement (as :func:`_numbers`)."""
    from bptt_core.learning import training

    return training


def _library_flow(cfg: ModelConfig, norm="fro", block: str = "h"):
    return _numbers().flow_matrix_of(cfg, norm, block)


@functools.lru_cache(maxsize=4)
def _library_twins(cfg: ModelConfig, tcfg) -> dict:
    out = _training().twin_runs(cfg, tcfg)
    return {k: (r.first_clip, r.diverged_at) for k, r in out.items()}


@dataclass(frozen=True)
class Context:
    """What a measure needs besides the model: the target page's own settings (e.g. the clipping run), and
    where the expensive numbers come from. The dashboard passes its own cached computations (the ones its
    pages draw), so a preset's claim is measured on the page's numbers, not computed a second time."""

    cfg: ModelConfig
    train_cfg: object = None  # the clipping twins' TrainConfig (None: the Clipping page's defaults, clip off)
    flow: Callable = _library_flow  # (cfg, norm, block) -> the gradient-flow matrix L
    twins: Callable = _library_twins  # (cfg, TrainConfig) -> twin name -> (first clip, divergence step)


# -- measures -------------------------------------------------------------------------------------


def _lyapunov_top(ctx: Context) -> float:

    return float(_numbers().lyapunov_of(ctx.cfg)[0])


def _decay_rate(ctx: Context) -> float:

    return float(decay_rate(ctx.flow(ctx.cfg)))


def _rho(ctx: Context) -> float:

    return float(_numbers().spectrum_of(ctx.cfg).rho)


def _sigma_spread(ctx: Context) -> float:

    return float(np.max(np.abs(_numbers().spectrum_of(ctx.cfg).singular_values - 1.0)))


def horizon_or_beyond(L: np.ndarray) -> int:
    """The memory horizon in steps; a horizon beyond the sequence counts as T (a lower bound)."""

    h = memory_horizon(L)
    return L.shape[0] if h is None else int(h)


def _end_to_end(ctx: Context) -> float:
    """log10 of ||dh_T/dh_1|| over its lag-0 value ||I||: how much of a change at the first step reaches the last."""
    L = ctx.flow(ctx.cfg)
    return float(L[-1, 0] - L[0, 0])


def _rnn_end_to_end(ctx: Context) -> float:
    """The same for a tanh RNN (orthogonal, gain 1) with this model's H, T, input and seed."""
    rnn = replace(ctx.cfg, cell="rnn", activation="tanh", init="orthogonal", gain=1.0, forget_bias=0.0,
                  r_min=0.0, r_max=1.0)  # fmt: skip
    return _end_to_end(replace(ctx, cfg=rnn))


def _lstm_c_over_rnn_horizon(ctx: Context) -> float:
    """The LSTM's cell-state (c -> c) memory horizon over a tanh RNN's (h -> h) at equal H, T, init and input."""
    rnn = replace(ctx.cfg, cell="rnn", activation="tanh", forget_bias=0.0)
    return horizon_or_beyond(ctx.flow(ctx.cfg, "fro", "c")) / horizon_or_beyond(ctx.flow(rnn))


def clipping_train_config(ctx: Context):
    """The clipping twins' training settings: the context's own, else the Clipping page's defaults
    (the twins clip or not by themselves: the run's own ``clip`` is off)."""
    return replace(ctx.train_cfg or _training().CLIPPING_STORY, clip="none")


def _twins(ctx: Context) -> dict:
    return ctx.twins(ctx.cfg, clipping_train_config(ctx))


def _first_clip(ctx: Context) -> float:
    """The earliest step at which either clipped twin clipped (NaN if neither did)."""
    firsts = [f for k, (f, _) in _twins(ctx).items() if k != "unclipped"]
    firsts = [f for f in firsts if f is not None]
    return float(min(firsts)) if firsts else math.nan


def _unclipped_diverged(ctx: Context) -> float:
    return float(_twins(ctx)["unclipped"][1] is not None)


def _clipped_finished(ctx: Context) -> float:
    return float(sum(d is None for k, (_, d) in _twins(ctx).items() if k != "unclipped"))


MEASURES = {  # name -> (label, unit, function of a Context)
    "lyapunov_top": ("top Lyapunov exponent λ₁", "log10/step", _lyapunov_top),
    "decay_rate": ("decay rate", "log10/step", _decay_rate),
    "rho": ("spectral radius ρ", "", _rho),
    "sigma_spread": ("largest |σᵢ − 1|", "", _sigma_spread),
    "lstm_c_over_rnn_horizon": ("LSTM c-block horizon ÷ RNN horizon", "", _lstm_c_over_rnn_horizon),
    "end_to_end": ("log10 ‖∂h(T)/∂h(1)‖ ÷ ‖I‖", "", _end_to_end),
    "rnn_end_to_end": ("the tanh RNN's log10 ‖∂h(T)/∂h(1)‖ ÷ ‖I‖", "", _rnn_end_to_end),
    "first_clip": ("first clipped step", "", _first_clip),
    "unclipped_diverged": ("unclipped twin diverged (1 = yes)", "", _unclipped_diverged),
    "clipped_finished": ("clipped twins that finished", "of 2", _clipped_finished),
}


def measure(name: str, ctx: Context) -> float:
    return MEASURES[name][2](ctx)


def check(claims, cfg: ModelConfig, train_cfg=None, **numbers) -> list[Checked]:
    """Every claim measured on ``cfg`` (the clipping claims with ``train_cfg``, a TrainConfig); ``numbers``:
    ``flow=``, ``twins=`` providers replacing the library's own computations (see :class:`Context`)."""
    ctx = Context(cfg, train_cfg, **numbers)
    return [Checked(c, measure(c.measure, ctx)) for c in claims]
