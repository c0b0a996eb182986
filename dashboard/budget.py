"""What one request may cost on the shared server: the light / heavy / refused policy (docs/serving.md).

The library estimates what a computation costs (:class:`bptt_core.analyses.cost.Cost`); this module
decides what the dashboard does with that estimate:

- at most :data:`LIGHT_SECONDS` estimated: light, computed at once in the visitor's own rerun;
- up to :data:`REQUEST_BUDGET` (time and memory): heavy, run as a background job
  (:mod:`dashboard.jobs`) with progress and a Cancel button;
- beyond it: refused with a message naming what to lower (:class:`OverBudget`), unless the visitor
  asks for more for that one request, and never beyond :data:`CEILING`, whatever is asked.

These limits protect a server that many people share; the library and the command line take any
size that fits the user's own machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bptt_core.analyses.cost import Cost, training_step_cost
from bptt_core.config import ModelConfig
from bptt_core.units import format_bytes, format_seconds


@dataclass(frozen=True)
class Budget:
    """Seconds (of one core) and bytes one request may use."""

    seconds: float
    bytes: int


LIGHT_SECONDS = 1.0  # up to this, work runs in the visitor's rerun (at the defaults: milliseconds)
REQUEST_BUDGET = Budget(seconds=60.0, bytes=2 * 2**30)  # without asking: 1 min, 2 GiB
CEILING = Budget(seconds=300.0, bytes=6 * 2**30)  # the most an explicit override may ask for: 5 min, 6 GiB


class OverBudget(ValueError):
    """A request whose estimated cost exceeds its budget; the message says what to lower."""

    def __init__(self, cost: Cost, budget: Budget):
        self.cost, self.budget = cost, budget
        super().__init__(refusal(cost, budget))


def budget(seconds: float | None = None, gib: float | None = None) -> Budget:
    """A budget raised above :data:`REQUEST_BUDGET` by an explicit override, bounded by :data:`CEILING`
    (ValueError naming the value above it)."""
    s = REQUEST_BUDGET.seconds if seconds is None else float(seconds)
    b = REQUEST_BUDGET.bytes if gib is None else float(gib) * 2**30
    if not (math.isfinite(s) and 0 < s <= CEILING.seconds):
        raise ValueError(f"the time budget must be in (0, {CEILING.seconds:g}] seconds (the ceiling), got {seconds}")
    if not (math.isfinite(b) and 0 < b <= CEILING.bytes):
        raise ValueError(f"the memory budget must be in (0, {CEILING.bytes / 2**30:g}] GiB (the ceiling), got {gib}")
    return Budget(s, int(b))


def light(cost: Cost) -> bool:
    """Cheap enough to compute in the visitor's own rerun."""
    return cost.seconds <= LIGHT_SECONDS


def fits(cost: Cost, b: Budget = REQUEST_BUDGET) -> bool:
    return cost.seconds <= b.seconds and cost.bytes <= b.bytes


def check(cost: Cost, b: Budget = REQUEST_BUDGET) -> Cost:
    """``cost``, or :class:`OverBudget` (a ValueError) when it is over ``b``."""
    if not fits(cost, b):
        raise OverBudget(cost, b)
    return cost


def refusal(cost: Cost, b: Budget = REQUEST_BUDGET) -> str:
    """Why ``cost`` is over ``b``, and what to lower."""
    over = []
    if cost.seconds > b.seconds:
        over.append(f"about {format_seconds(cost.seconds)} (budget {format_seconds(b.seconds)})")
    if cost.bytes > b.bytes:
        over.append(f"about {format_bytes(cost.bytes)} of memory (budget {format_bytes(b.bytes)})")
    knobs = list(cost.lower) or ["the settings"]
    lower = knobs[0] if len(knobs) == 1 else ", ".join(knobs[:-1]) + " or " + knobs[-1]
    return (
        f"{cost.what} would need {' and '.join(over) or 'more than the budget'}, over the per-request budget. "
        f"Lower {lower}" + (f", or {cost.alternative}." if cost.alternative else ".")
    )


def max_steps_within(cfg: ModelConfig, train_cfg, b: Budget = REQUEST_BUDGET, runs: int = 3) -> int:
    """The most training steps that fit ``b`` with the other settings unchanged (0: none fit)."""
    step = training_step_cost(cfg, train_cfg)
    if step.bytes > b.bytes:
        return 0
    return int(b.seconds // (runs * step.seconds))
