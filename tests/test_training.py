"""Training histories, clipping twins, TBPTT training, divergence handling and bad settings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bptt_core.config import ModelConfig
from bptt_core.flow.jacobians import loss_gradient_norms
from bptt_core.learning.training import (
    HISTORY_COLUMNS,
    TrainConfig,
    batches,
    clip_gradients,
    train,
    truncated_gradients,
    twin_runs,
)
from bptt_core.models.build import build_model

SMALL = dict(seq_len=10, hidden_size=8)

# (cell, activation, task, optimizer): every cell, both optimisers, both loss placements
HISTORY_GRID = [
    ("rnn", "tanh", "adding", "sgd"),
    ("rnn", "relu", "gaussian", "adam"),
    ("rnn", "sigmoid", "sine", "sgd"),
    ("lstm", "tanh", "adding", "adam"),
    ("gru", "tanh", "copy", "sgd"),
]

# A run whose unclipped twin explodes: ReLU, W_hh rescaled to rho = 1.1, a large step size.
EXPLODING = ModelConfig(task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, **SMALL)
EXPLODING_TRAIN = dict(steps=12, batch_size=4, lr=0.1)

BAD_TRAIN = [
    ("steps", 0),
    ("steps", 5001),
    ("optimizer", "rmsprop"),
    ("lr", 0.0),
    ("lr", -1e-3),
    ("lr", float("nan")),
    ("batch_size", 0),
    ("clip", "both"),
    ("clip_threshold", 0.0),
    ("clip_threshold", -1.0),
    ("k1", -1),
    ("k2", 2.5),
    ("seed", -1),
]


@pytest.mark.parametrize("cell, act, task, opt", HISTORY_GRID)
def test_history_has_documented_columns_and_shapes(cell, act, task, opt):
    m = ModelConfig(cell=cell, activation=act, task=task, **SMALL)
    r = train(m, TrainConfig(steps=4, batch_size=3, optimizer=opt, lr=0.01))
    h = r.history
    assert list(h.columns) == list(HISTORY_COLUMNS)
    assert len(h) == 4 and h["step"].tolist() == [0, 1, 2, 3]
    assert h["clipped"].dtype == bool and h["nonfinite"].dtype == bool
    assert not h["clipped"].any() and not h["nonfinite"].any() and r.diverged_at is None
    assert r.dh_norms.shape == (4, m.seq_len) and np.isfinite(r.dh_norms).all()
    assert (h["grad_norm"] == h["grad_norm_clipped"]).all()  # no clipping asked for
    # the group norms make up the global norm
    groups = h[[c for c in h.columns if c.startswith("grad_") and c not in ("grad_norm", "grad_norm_clipped")]]
    np.testing.assert_allclose(np.sqrt((groups**2).sum(axis=1)), h["grad_norm"], rtol=1e-5)
    assert r.loss_on in ("all", "last")
    assert r.dh_frame().shape == (4, m.seq_len)


def test_loss_and_dh_norms_match_an_independent_computation():
    """Step 0: the loss from torch's own forward pass, ||dL/dh_t|| from the float64 probe engine."""
    m = ModelConfig(task="adding", **SMALL)
    cfg = TrainConfig(steps=1, batch_size=1)
    r = train(m, cfg)
    rnn, readout = build_model(m)
    data = batches(m, cfg)[0]
    with torch.no_grad():
        out, _ = rnn(data.x)  # (T, 1, H)
    loss = ((readout(out)[data.loss_mask] - data.y[data.loss_mask]) ** 2).sum()
    assert r.history["loss"][0] == pytest.approx(loss.item(), rel=1e-6)
    ref = loss_gradient_norms(rnn, readout, data.x[:, 0], data.y[:, 0])  # adding: loss on the last step only
    np.testing.assert_allclose(r.dh_norms[0], ref, rtol=1e-4)


def test_batch_loss_is_the_batch_mean():
    m = ModelConfig(task="gaussian", **SMALL)
    cfg = TrainConfig(steps=1, batch_size=5)
    r = train(m, cfg)
    rnn, readout = build_model(m)
    data = batches(m, cfg)[0]
    with torch.no_grad():
        out, _ = rnn(data.x)
    per_seq = ((readout(out) - data.y) ** 2).sum(dim=(0, 2))  # (B,)
    assert r.history["loss"][0] == pytest.approx(per_seq.mean().item(), rel=1e-6)


def test_reproducible_by_seed():
    m = ModelConfig(task="adding", **SMALL)
    a = train(m, TrainConfig(steps=5, batch_size=4, optimizer="adam", seed=3))
    b = train(m, TrainConfig(steps=5, batch_size=4, optimizer="adam", seed=3))
    c = train(m, TrainConfig(steps=5, batch_size=4, optimizer="adam", seed=4))
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    np.testing.assert_array_equal(a.dh_norms, b.dh_norms)
    assert not np.array_equal(a.history["loss"], c.history["loss"])  # another stream of batches
    first = batches(m, TrainConfig(steps=3, seed=3))
    assert all(torch.equal(x.x, y.x) for x, y in zip(first, batches(m, TrainConfig(steps=3, seed=3)), strict=True))
    assert not torch.equal(first[0].x, first[1].x)  # a fresh batch every step


@pytest.mark.parametrize("clip", ["norm", "value"])
@pytest.mark.parametrize("threshold", [1e-3, 0.5, 1e3])
def test_clipping_equals_torch_functions(clip, threshold):
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(s)) for s in [(4, 3), (4, 4), (4,)]]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    ref = [p.grad.clone() for p in params]
    ref_params = [torch.nn.Parameter(torch.zeros_like(p)) for p in params]
    for q, g in zip(ref_params, ref, strict=True):
        q.grad = g.clone()
    if clip == "norm":
        torch.nn.utils.clip_grad_norm_(ref_params, threshold)
    else:
        torch.nn.utils.clip_grad_value_(ref_params, threshold)
    before, after, changed = clip_gradients(params, clip, threshold)
    for p, q in zip(params, ref_params, strict=True):
        assert torch.equal(p.grad, q.grad)
    assert before == pytest.approx(float(torch.cat([g.flatten() for g in ref]).norm()), rel=1e-6)
    assert after == pytest.approx(float(torch.cat([q.grad.flatten() for q in ref_params]).norm()), rel=1e-6)
    assert changed == any(not torch.equal(g, q.grad) for g, q in zip(ref, ref_params, strict=True))
    assert changed == (threshold < 1)  # the random entries are O(1)


def test_twins_identical_until_the_first_clip_and_differ_after():
    base = TrainConfig(**EXPLODING_TRAIN)
    unclipped = train(EXPLODING, base)
    g = unclipped.history["grad_norm"].to_numpy()
    c = 1.05 * float(np.nanmax(g[:3]))  # the first three steps are below the threshold, a later one above
    twins = twin_runs(EXPLODING, TrainConfig(**EXPLODING_TRAIN, clip_threshold=c))
    pd.testing.assert_frame_equal(twins["unclipped"].history, unclipped.history, check_exact=True)
    assert twins["norm"].first_clip == int(np.argmax(g > c))  # norm clipping acts exactly where ||g|| > c
    u = twins["unclipped"]
    for name in ("norm", "value"):
        r = twins[name]
        fc = r.first_clip
        assert fc is not None and fc >= 1
        # bit for bit identical before the first clip; at it, the loss and raw gradient are still the same
        pd.testing.assert_frame_equal(r.history.iloc[:fc], u.history.iloc[:fc], check_exact=True)
        np.testing.assert_array_equal(r.dh_norms[: fc + 1], u.dh_norms[: fc + 1])
        assert r.history["grad_norm"][fc] == u.history["grad_norm"][fc]
        assert r.history["grad_norm_clipped"][fc] < r.history["grad_norm"][fc]
        weights = [f"norm_{g}" for g in ("W_ih", "W_hh", "bias", "readout")]
        assert (r.history[weights].iloc[fc + 1] != u.history[weights].iloc[fc + 1]).any()  # the clipped update differs
    n = twins["norm"].history
    hit = n["clipped"].to_numpy()
    np.testing.assert_allclose(n["grad_norm_clipped"][hit], c, rtol=1e-5)  # clip_grad_norm_ rescales to c


def test_divergent_twin_is_flagged_and_the_others_go_on():
    progress = []
    twins = twin_runs(EXPLODING, TrainConfig(**EXPLODING_TRAIN, clip_threshold=1.0), lambda f, msg: progress.append(f))
    u = twins["unclipped"]
    assert u.diverged_at is not None
    assert len(u.history) == u.diverged_at + 1  # stopped cleanly on the non-finite step
    assert u.history["nonfinite"].iloc[-1] and not u.history["nonfinite"].iloc[:-1].any()
    last = u.history.iloc[-1]
    assert not (math.isfinite(last["loss"]) and math.isfinite(last["grad_norm"]))
    for name in ("norm", "value"):
        assert twins[name].diverged_at is None
        assert len(twins[name].history) == EXPLODING_TRAIN["steps"]
        assert np.isfinite(twins[name].history["loss"]).all()
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("k1, k2", [(50, 50), (50, 2), (2, 50)])
def test_truncation_longer_than_the_sequence_is_refused_not_clamped(k1, k2):
    m = ModelConfig(task="adding", **SMALL)
    with pytest.raises(ValueError, match=r"k[12] must be in \[1, "):
        train(m, TrainConfig(steps=1, batch_size=2, k1=k1, k2=k2))


def test_tbptt_full_window_equals_bptt_training():
    m = ModelConfig(task="adding", **SMALL)
    full = train(m, TrainConfig(steps=4, batch_size=3, lr=0.05))
    whole = train(m, TrainConfig(steps=4, batch_size=3, lr=0.05, k1=m.seq_len, k2=m.seq_len))
    cut = train(m, TrainConfig(steps=4, batch_size=3, lr=0.05, k1=2, k2=2))
    for r in (whole,):
        np.testing.assert_allclose(r.history["loss"], full.history["loss"], rtol=1e-5)
        np.testing.assert_allclose(r.history["grad_norm"], full.history["grad_norm"], rtol=1e-4)
    assert full.history["grad_norm"][0] != pytest.approx(cut.history["grad_norm"][0], rel=1e-3)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_truncated_training_gradient_is_the_batch_mean_of_tbptt(cell):
    from bptt_core.learning.truncation import tbptt_gradients

    m = ModelConfig(cell=cell, task="gaussian", **SMALL)
    rnn, readout = build_model(m)
    data = batches(m, TrainConfig(steps=1, batch_size=3))[0]
    got = truncated_gradients(rnn, readout, data, 3, 5)
    per_seq = [
        tbptt_gradients(rnn, readout, data.x[:, b], data.y[:, b], 3, 5, loss_mask=data.loss_mask) for b in range(3)
    ]
    for j, g in enumerate(got):
        torch.testing.assert_close(g, sum(s[j] for s in per_seq) / 3, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name, value", BAD_TRAIN)
def test_bad_train_settings_raise_naming_the_setting(name, value):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**{name: value})


@pytest.mark.parametrize("k1, k2", [(0, 5), (5, 0)])
def test_half_set_truncation_is_refused(k1, k2):
    with pytest.raises(ValueError, match=r"k1 and k2"):
        TrainConfig(k1=k1, k2=k2)


def test_task_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="seq_len"):
        train(ModelConfig(task="temporal_order", seq_len=5, hidden_size=4), TrainConfig(steps=1))
    with pytest.raises(ValueError, match="model_cfg"):
        train({"cell": "rnn"}, TrainConfig(steps=1))


@pytest.mark.slow
def test_the_clipping_page_defaults_tell_their_story():
    """What the Clipping page says at its defaults, measured: the unclipped twin diverges; both clipped twins
    run identically to it for several steps, then clip, and finish."""
    from bptt_core.learning.training import CLIPPING_STORY

    out = twin_runs(ModelConfig(), CLIPPING_STORY)
    assert out["unclipped"].diverged_at is not None
    for name in ("norm", "value"):
        r = out[name]
        assert r.diverged_at is None and len(r.history) == CLIPPING_STORY.steps
        assert r.first_clip is not None and r.first_clip >= 3  # several unclipped steps first
        before = slice(0, r.first_clip + 1)  # up to and including the first clip, the gradient is the same
        np.testing.assert_array_equal(
            r.history["grad_norm"].to_numpy()[before], out["unclipped"].history["grad_norm"].to_numpy()[before]
        )
        assert r.history["grad_norm"].iloc[0] < CLIPPING_STORY.clip_threshold  # no clip at step 0
