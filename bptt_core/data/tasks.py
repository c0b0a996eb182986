"""Seeded synthetic sequence tasks, each yielding inputs, targets and where the loss is taken.

- ``gaussian``: x_t ~ N(0, I); the target is the previous input (y_t = x_{t-1}, y_1 = 0), a
  one-step memory. Loss on every step.
- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): two channels,
  values U(0, 1) and a marker that is 1 at one step in the first half and one in the second;
  the target, on the last step only, is the sum of the two marked values.
- ``copy``: the copy (memory) task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016):
  m symbols, blanks, a delimiter, then the m symbols must be recalled over the last m steps.
  One-hot inputs and targets; loss on every step (blank is a target class too).
- ``temporal_order``: Hochreiter & Schmidhuber's temporal-order task: X or Y at one random step
  in [10%, 20%) of the sequence and one in [50%, 60%), distractors elsewhere; the class (XX, XY,
  YX, YY) is the one-hot target on the last step only.
- ``sine``: x_t = sin(w t + p) with random frequency and phase; the target is the next value.
  Loss on every step.

The loss everywhere is docs/design.md's squared error summed over output units and over the steps in
``loss_mask``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bptt_core.config import MAX_BATCH, MAX_INPUT, MAX_SEQ_LEN, TASKS, check_choice, check_int

COPY_SYMBOLS = 8  # alphabet of the copy task; plus blank and delimiter channels
ORDER_DISTRACTORS = 4  # temporal-order: symbols a, b, c, d besides X and Y

TASK_INPUT_SIZE = {"adding": 2, "copy": COPY_SYMBOLS + 2, "temporal_order": 2 + ORDER_DISTRACTORS, "sine": 1}
TASK_OUTPUT_SIZE = {"adding": 1, "copy": COPY_SYMBOLS + 1, "temporal_order": 4, "sine": 1}
TASK_MIN_SEQ_LEN = {"gaussian": 1, "adding": 2, "copy": 3, "temporal_order": 10, "sine": 1}
DEFAULT_GAUSSIAN_INPUT = 4


@dataclass
class TaskData:
    x: torch.Tensor  # (T, B, I) inputs
    y: torch.Tensor  # (T, B, O) targets
    loss_mask: torch.Tensor  # (T,) bool: steps whose squared error enters the loss
    name: str
    loss_on: str  # "all" or "last", said on the page

    @property
    def input_size(self) -> int:
        return self.x.shape[-1]

    @property
    def output_size(self) -> int:
        return self.y.shape[-1]


def task_input_size(task: str, input_size: int = 0) -> int:
    """The input width a task needs; ``input_size`` 0 means its default."""
    check_choice("task", task, TASKS)
    if task == "gaussian":
        return input_size or DEFAULT_GAUSSIAN_INPUT
    need = TASK_INPUT_SIZE[task]
    if input_size not in (0, need):
        raise ValueError(f"input_size must be {need} for the {task} task (or 0 for its default), got {input_size}")
    return need


def task_output_size(task: str, input_size: int = 0) -> int:
    return task_input_size(task, input_size) if task == "gaussian" else TASK_OUTPUT_SIZE[task]


def make_task(name: str, seq_len: int, batch_size: int = 1, seed: int = 0, input_size: int = 0) -> TaskData:
    """Generate one batch of ``name`` (float32); the same seed gives the same data."""
    check_choice("task", name, TASKS)
    check_int("seq_len", seq_len, TASK_MIN_SEQ_LEN[name], MAX_SEQ_LEN)
    check_int("batch_size", batch_size, 1, MAX_BATCH)
    check_int("input_size", input_size, 0, MAX_INPUT)
    I = task_input_size(name, input_size)
    gen = torch.Generator().manual_seed(int(seed))
    T, B = seq_len, batch_size
    mask_all = torch.ones(T, dtype=torch.bool)
    mask_last = torch.zeros(T, dtype=torch.bool)
    mask_last[-1] = True
    if name == "gaussian":
        x = torch.randn(T, B, I, generator=gen)
        y = torch.cat([torch.zeros(1, B, I), x[:-1]])
        return TaskData(x, y, mask_all, name, "all")
    if name == "adding":
        return TaskData(*_adding(T, B, gen), mask_last, name, "last")
    if name == "copy":
        return TaskData(*_copy(T, B, gen), mask_all, name, "all")
    if name == "temporal_order":
        return TaskData(*_temporal_order(T, B, gen), mask_last, name, "last")
    omega = 0.1 + 0.4 * torch.rand(1, B, 1, generator=gen)  # rad/step
    phase = 2 * math.pi * torch.rand(1, B, 1, generator=gen)
    t = torch.arange(T + 1, dtype=torch.float32).reshape(-1, 1, 1)
    wave = torch.sin(omega * t + phase)  # (T+1, B, 1)
    return TaskData(wave[:-1], wave[1:], mask_all, name, "all")


def _adding(T: int, B: int, gen: torch.Generator):
    values = torch.rand(T, B, generator=gen)
    half = max(T // 2, 1)
    first = torch.randint(0, half, (B,), generator=gen)
    second = torch.randint(half, T, (B,), generator=gen) if T > half else first
    markers = torch.zeros(T, B)
    cols = torch.arange(B)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (T, B, 2)
    y = torch.zeros(T, B, 1)
    y[-1, :, 0] = (values * markers).sum(0)
    return x, y


def _copy(T: int, B: int, gen: torch.Generator):
    m = max(1, min(10, (T - 1) // 2))  # symbols to remember
    blank, delim = COPY_SYMBOLS, COPY_SYMBOLS + 1
    symbols = torch.randint(0, COPY_SYMBOLS, (m, B), generator=gen)
    inp = torch.full((T, B), blank, dtype=torch.long)
    inp[:m] = symbols
    inp[T - m - 1] = delim
    out = torch.full((T, B), blank, dtype=torch.long)
    out[T - m :] = symbols
    x = torch.nn.functional.one_hot(inp, COPY_SYMBOLS + 2).float()  # (T, B, 10)
    y = torch.nn.functional.one_hot(out, COPY_SYMBOLS + 1).float()  # (T, B, 9)
    return x, y


def _temporal_order(T: int, B: int, gen: torch.Generator):
    sym = torch.randint(2, 2 + ORDER_DISTRACTORS, (T, B), generator=gen)  # distractors
    lo1, hi1 = int(0.1 * T), max(int(0.2 * T), int(0.1 * T) + 1)
    lo2, hi2 = int(0.5 * T), max(int(0.6 * T), int(0.5 * T) + 1)
    t1 = torch.randint(lo1, hi1, (B,), generator=gen)
    t2 = torch.randint(lo2, hi2, (B,), generator=gen)
    a = torch.randint(0, 2, (B,), generator=gen)  # 0 = X, 1 = Y
    b = torch.randint(0, 2, (B,), generator=gen)
    cols = torch.arange(B)
    sym[t1, cols] = a
    sym[t2, cols] = b
    x = torch.nn.functional.one_hot(sym, 2 + ORDER_DISTRACTORS).float()  # (T, B, 6)
    y = torch.zeros(T, B, 4)
    y[-1, cols, 2 * a + b] = 1.0  # XX, XY, YX, YY
    return x, y
