"""The tasks (bptt_core.data.tasks): the shapes, masks and targets they document, seeded, and refused where
the sequence is too short for them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt_core.data.tasks import COPY_SYMBOLS, TASK_MIN_SEQ_LEN, make_task

# -- tasks -------------------------------------------------------------------------------------------

TASK_SHAPES = [
    # (task, T, input width, output width, loss_on)
    ("gaussian", 12, 4, 4, "all"),
    ("adding", 12, 2, 1, "last"),
    ("copy", 30, COPY_SYMBOLS + 2, COPY_SYMBOLS + 1, "all"),
    ("temporal_order", 40, 6, 4, "last"),
    ("sine", 12, 1, 1, "all"),
]


@pytest.mark.parametrize("task,T,I,O,loss_on", TASK_SHAPES, ids=[t[0] for t in TASK_SHAPES])
def test_task_shapes_masks_and_seeding(task, T, I, O, loss_on):
    B = 5
    d = make_task(task, T, B, seed=0)
    assert d.x.shape == (T, B, I) and d.y.shape == (T, B, O)
    assert d.x.dtype == torch.float32 and d.y.dtype == torch.float32
    assert d.input_size == I and d.output_size == O and d.name == task and d.loss_on == loss_on
    assert d.loss_mask.shape == (T,) and d.loss_mask.dtype == torch.bool
    if loss_on == "last":
        assert d.loss_mask[-1] and d.loss_mask.sum() == 1
    else:
        assert d.loss_mask.all()
    assert torch.isfinite(d.x).all() and torch.isfinite(d.y).all()
    again, other = make_task(task, T, B, seed=0), make_task(task, T, B, seed=1)
    assert torch.equal(again.x, d.x) and torch.equal(again.y, d.y)
    assert not (torch.equal(other.x, d.x) and torch.equal(other.y, d.y))


def test_gaussian_task_targets_the_previous_input():
    d = make_task("gaussian", 9, 3, seed=0, input_size=7)
    assert d.x.shape == (9, 3, 7)
    assert (d.y[0] == 0).all()
    assert torch.equal(d.y[1:], d.x[:-1])


@pytest.mark.parametrize("T", [2, 3, 11, 50])
def test_adding_target_is_the_sum_of_the_marked_values(T):
    d = make_task("adding", T, 64, seed=3)
    values, markers = d.x[..., 0], d.x[..., 1]  # (T, B)
    assert ((values >= 0) & (values <= 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(0).numpy(), 2.0)  # exactly two marked steps
    first = markers.argmax(0)  # the first marked step
    assert (first < T // 2).all()  # one in the first half
    assert (markers[T // 2 :].sum(0) == 1).all()  # and one in the second
    target = (values * markers).sum(0)
    torch.testing.assert_close(d.y[-1, :, 0], target)
    assert (d.y[:-1] == 0).all()


@pytest.mark.parametrize("T", [3, 8, 21, 40])
def test_copy_recalls_the_first_m_symbols(T):
    d = make_task("copy", T, 16, seed=4)
    m = max(1, min(10, (T - 1) // 2))
    blank, delim = COPY_SYMBOLS, COPY_SYMBOLS + 1
    assert (d.x.sum(-1) == 1).all() and (d.y.sum(-1) == 1).all()  # one-hot everywhere
    inp, out = d.x.argmax(-1), d.y.argmax(-1)  # (T, B)
    assert (inp[:m] < COPY_SYMBOLS).all()  # m real symbols first
    assert (inp[T - m - 1] == delim).all()  # the delimiter, then recall
    rest = torch.ones(T, dtype=torch.bool)
    rest[:m] = False
    rest[T - m - 1] = False
    assert (inp[rest] == blank).all()
    assert torch.equal(out[T - m :], inp[:m])  # the recall segment is the first m symbols
    assert (out[: T - m] == blank).all()


@pytest.mark.parametrize("T", [10, 23, 100])
def test_temporal_order_class_is_the_order_of_x_and_y(T):
    d = make_task("temporal_order", T, 64, seed=5)
    sym = d.x.argmax(-1)  # (T, B): 0 = X, 1 = Y, 2.. distractors
    assert (d.x.sum(-1) == 1).all()
    relevant = sym < 2
    assert (relevant.sum(0) == 2).all()
    for b in range(64):
        t1, t2 = torch.nonzero(relevant[:, b]).flatten().tolist()
        assert int(0.1 * T) <= t1 < max(int(0.2 * T), int(0.1 * T) + 1)
        assert int(0.5 * T) <= t2 < max(int(0.6 * T), int(0.5 * T) + 1)
        cls = 2 * sym[t1, b].item() + sym[t2, b].item()  # XX, XY, YX, YY
        assert d.y[-1, b].argmax().item() == cls and d.y[-1, b].sum().item() == 1
    assert (d.y[:-1] == 0).all()


def test_sine_target_is_the_next_value():
    d = make_task("sine", 30, 4, seed=6)
    torch.testing.assert_close(d.y[:-1], d.x[1:])
    assert d.x.abs().max() <= 1
    # a pure sinusoid: x_{t+1} + x_{t-1} = 2 cos(w) x_t with one w per sequence
    x = d.x[..., 0].double()
    ratio = (x[2:] + x[:-2]) / (2 * x[1:-1])
    ok = x[1:-1].abs() > 0.2
    for b in range(4):
        r = ratio[ok[:, b], b]
        assert (r - r.mean()).abs().max() < 1e-4
        assert 0.1 - 1e-3 <= math.acos(r.mean().clamp(-1, 1).item()) <= 0.5 + 1e-3  # w in [0.1, 0.5)


BAD_TASKS = [
    # (kwargs, words)
    (dict(name="copy", seq_len=2), "seq_len must be in [3,"),
    (dict(name="temporal_order", seq_len=5), "seq_len must be in [10,"),
    (dict(name="adding", seq_len=1), "seq_len must be in [2,"),
    (dict(name="adding", seq_len=10, input_size=3), "input_size must be 2 for the adding task"),
    (dict(name="copy", seq_len=10, input_size=4), "input_size must be 10 for the copy task"),
    (dict(name="sine", seq_len=10, input_size=2), "input_size must be 1 for the sine task"),
    (dict(name="gaussian", seq_len=10, input_size=-1), "input_size"),
    (dict(name="gaussian", seq_len=10, batch_size=0), "batch_size"),
    (dict(name="gaussian", seq_len=0), "seq_len"),
    (dict(name="nope", seq_len=10), "task must be one of"),
]


@pytest.mark.parametrize("kw,words", BAD_TASKS, ids=[f"{k['name']}-{w[:20]}" for k, w in BAD_TASKS])
def test_a_task_that_does_not_fit_is_refused(kw, words):
    with pytest.raises(ValueError) as e:
        make_task(**kw)
    assert words in str(e.value)


@pytest.mark.parametrize("task", sorted(TASK_MIN_SEQ_LEN))
def test_every_task_works_at_its_minimum_length(task):
    d = make_task(task, TASK_MIN_SEQ_LEN[task], 2, seed=0)
    assert d.x.shape[0] == TASK_MIN_SEQ_LEN[task] and torch.isfinite(d.y).all()
