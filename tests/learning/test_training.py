"""Training (bptt_core.learning.training): histories, clipping twins, TBPTT training, divergence, streamed
and cancellable steps, weight snapshots that are the weights of a run stopped there, and bad settings."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bptt_core.config import ModelConfig
from bptt_core.flow.jacobians import loss_gradient_norms
from bptt_core.learning.player import frames
from bptt_core.learning.training import (
    HISTORY_COLUMNS,
    MAX_STEPS,
    Cancelled,
    TrainConfig,
    _Snapshots,
    batches,
    clip_gradients,
    max_snapshots,
    snapshot_steps,
    stream_batches,
    train,
    truncated_gradients,
    twin_runs,
)
from bptt_core.models.build import build_model
from tests.helpers.layouts import ALL, H, I, T, make_module
from tests.helpers.player import PLAYER_SMALL, RUNS, _run
from tests.helpers.strategies import PROFILE, WILD, only_value_errors

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


# == Streamed, cancellable training ==========================================================================

SMALL_CFG = ModelConfig(hidden_size=8, seq_len=12)
SMALL_TRAIN = TrainConfig(steps=20, batch_size=3, lr=0.05)

# -- streaming training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["gaussian", "adding", "copy", "temporal_order", "sine"])
def test_streamed_batches_equal_the_built_list(task):
    m = ModelConfig(task=task, seq_len=12, hidden_size=4)
    t = TrainConfig(steps=4, batch_size=3, seed=7)
    built, streamed = batches(m, t), list(stream_batches(m, t))
    assert len(built) == len(streamed) == 4
    for a, b in zip(built, streamed, strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.loss_mask, b.loss_mask)
    assert not torch.equal(built[0].x, built[1].x)  # a fresh batch per step


def test_streaming_never_builds_every_batch(monkeypatch):
    """train draws batch i when step i runs: at any time at most one batch exists ahead of the loop."""
    import bptt_core.learning.training as T

    drawn = []
    real = T.batch_at
    monkeypatch.setattr(T, "batch_at", lambda m, t, i: drawn.append(i) or real(m, t, i))
    seen = []
    train(SMALL_CFG, TrainConfig(steps=5, batch_size=2), progress=lambda f, msg: seen.append(len(drawn)))
    assert seen == [1, 2, 3, 4, 5]


def test_cancel_stops_training_between_steps():
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 6

    with pytest.raises(Cancelled):
        train(SMALL_CFG, SMALL_TRAIN, cancel=cancel)
    assert len(calls) == 7  # checked before and after each forward pass: stopped in the 4th step


def test_progress_reaches_one_after_every_step():
    seen = []
    train(SMALL_CFG, TrainConfig(steps=7, batch_size=2), progress=lambda f, msg: seen.append(f))
    assert seen == pytest.approx([(i + 1) / 7 for i in range(7)])


# == Weight snapshots ========================================================================================

# A run whose unclipped twin explodes (EXPLODING's settings), and whose clipped twins clip often.
PLAYER_EXPLODING = ModelConfig(
    task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, seq_len=10, hidden_size=8
)


def _assert_state_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("name, m, cfg, twin", RUNS, ids=[r[0] for r in RUNS])
def test_snapshot_at_step_k_is_bit_for_bit_the_run_stopped_at_k(name, m, cfg, twin):
    r = _run(m, cfg, twin)
    assert [s.step for s in r.snapshots][:1] == [0] and r.snapshots[-1].step == cfg.steps - 1
    assert len(r.snapshots) >= 2
    for snap in r.snapshots:
        k = snap.step
        if k == 0:
            rnn, readout = build_model(m)
        else:
            stopped = _run(m, replace(cfg, steps=k), twin)
            rnn, readout = stopped.rnn, stopped.readout
        _assert_state_equal(snap.rnn_state, rnn.state_dict())
        _assert_state_equal(snap.readout_state, readout.state_dict())
        assert snap.loss == r.history["loss"][k]  # the weights that produced row k's loss
    # a snapshot is a copy: the trained model moved on from the first one
    assert not torch.equal(r.snapshots[0].rnn_state["weight_hh_l0"], r.rnn.state_dict()["weight_hh_l0"])


def test_snapshot_steps_are_evenly_spaced_and_include_both_ends():
    assert snapshot_steps(100, 5) == [0, 25, 50, 74, 99]  # i * 99/4 rounded: 24.75, 49.5, 74.25
    assert snapshot_steps(3, 10) == [0, 1, 2]  # fewer steps than asked: every step
    assert snapshot_steps(10, 1) == [0] and snapshot_steps(10, 0) == [] and snapshot_steps(1, 4) == [0]
    gaps = np.diff(snapshot_steps(5000, 20))
    assert gaps.max() - gaps.min() <= 1


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))


@pytest.mark.parametrize("steps", [1, 7, 64, 1000, MAX_STEPS])
@pytest.mark.parametrize("count", [0, 1, 5, 20])
@pytest.mark.parametrize("pattern", ["every", "every-third", "none"])
def test_number_of_snapshots_is_bounded_whatever_the_step_count(steps, count, pattern):
    cfg = TrainConfig(steps=steps, snapshots=count)
    snaps = _Snapshots(cfg)
    model, readout = _Tiny(), nn.Linear(1, 1)
    clipped_steps = {"every": range(steps), "every-third": range(0, steps, 3), "none": range(0)}[pattern]
    clipped = set(clipped_steps)
    last = steps - 1
    for i in range(steps):
        with torch.no_grad():
            model.w.fill_(i)  # each step's weights are different
        snaps.decide(i, float(i), i in clipped, i == last and pattern == "every", model, readout)
    kept = snaps.result()
    assert len(kept) <= max_snapshots(cfg) == 2 * count + 1
    evens = [s.step for s in kept if "even" in s.reasons]
    assert evens == snapshot_steps(steps, count)
    clips = [s.step for s in kept if "clip" in s.reasons]
    assert len(clips) <= count and set(clips) <= clipped
    if clipped and count:
        assert clips[0] == min(clipped)  # the first clip event is always kept
        ranks = [sorted(clipped).index(c) for c in clips]
        assert len(set(np.diff(ranks).tolist())) <= 1  # evenly spread over the clip events
    for s in kept:  # each snapshot holds its own step's weights
        assert torch.equal(s.rnn_state["w"], torch.full((2,), float(s.step)))
    if pattern == "every":
        assert kept[-1].step == last and "diverged" in kept[-1].reasons


def test_clip_events_and_the_divergence_step_are_kept():
    twins = twin_runs(PLAYER_EXPLODING, TrainConfig(**EXPLODING_TRAIN, clip_threshold=1.0, snapshots=2))
    u = twins["unclipped"]
    assert u.diverged_at is not None
    assert u.snapshots[-1].step == u.diverged_at and "diverged" in u.snapshots[-1].reasons
    assert not math.isfinite(u.snapshots[-1].loss) or not math.isfinite(u.history["grad_norm"][u.diverged_at])
    n = twins["norm"]
    clipped = np.flatnonzero(n.history["clipped"].to_numpy()).tolist()
    assert clipped, "the clipped twin must clip in this setting"
    clip_snaps = [s.step for s in n.snapshots if "clip" in s.reasons]
    assert clip_snaps and clip_snaps[0] == clipped[0] and set(clip_snaps) <= set(clipped)
    assert len(n.snapshots) <= max_snapshots(n.train_cfg)


@pytest.mark.parametrize("value", [-1, 101, 2.5, "3"])
def test_bad_snapshot_count_is_refused_naming_it(value):
    with pytest.raises(ValueError, match="snapshots"):
        TrainConfig(snapshots=value)


@pytest.mark.parametrize("cell, hidden, input_size", [("rnn", 8, 1), ("lstm", 512, 256), ("gru", 512, 256)])
def test_snapshots_of_the_largest_models_fit_the_memory_bound(cell, hidden, input_size):
    from bptt_core.learning.training import MAX_SNAPSHOT_BYTES, snapshot_count, state_bytes
    from bptt_core.models.recurrent import make_rnn

    rnn, readout = make_rnn(cell, input_size, hidden), nn.Linear(hidden, 10)
    per = state_bytes(rnn, readout)
    assert per == sum(p.numel() * 4 for p in [*rnn.parameters(), *readout.parameters()])
    cfg = TrainConfig(steps=MAX_STEPS, snapshots=100)
    n = snapshot_count(cfg, per)
    assert max_snapshots(cfg, per) * per <= MAX_SNAPSHOT_BYTES
    assert n == 100 if cell == "rnn" else 1 <= n < 100  # a small model keeps what it asked for
    snaps = _Snapshots(cfg, per)
    assert len(snaps.even) == n and snaps.clip_cap == n


def test_twins_from_a_users_model_start_their_snapshots_at_its_weights():
    m = ModelConfig(task="gaussian", **PLAYER_SMALL)
    user_rnn, user_readout = build_model(replace(m, seed=7))  # "a trained model": other weights than the config's
    kept = {k: v.clone() for k, v in user_rnn.state_dict().items()}
    twins = twin_runs(m, TrainConfig(steps=3, batch_size=2, snapshots=2), initial=(user_rnn, user_readout))
    for r in twins.values():
        _assert_state_equal(r.snapshots[0].rnn_state, kept)
        _assert_state_equal(r.snapshots[0].readout_state, user_readout.state_dict())
        fr = frames(r, n_lyapunov=1)
        W = kept["weight_hh_l0"].double()
        assert np.array_equal(fr[0].eigenvalues, torch.linalg.eigvals(W).numpy())
    _assert_state_equal(user_rnn.state_dict(), kept)  # the user's model is never changed


@pytest.mark.parametrize("k", [(0, 0), (2, 3)], ids=["full", "tbptt"])
def test_a_played_run_from_a_users_model_starts_at_its_weights(k):
    """train(initial=...) (the Truncated BPTT and Gradient flow players on an uploaded model): the first
    snapshot is the user's weights, the run equals one from a model built with them, the model is unchanged."""
    m = ModelConfig(task="gaussian", **PLAYER_SMALL)
    user_rnn, user_readout = build_model(replace(m, seed=7))
    kept = {k_: v.clone() for k_, v in user_rnn.state_dict().items()}
    tcfg = TrainConfig(steps=4, batch_size=2, lr=0.05, k1=k[0], k2=k[1], snapshots=2)
    r = train(m, tcfg, initial=(user_rnn, user_readout))
    _assert_state_equal(r.snapshots[0].rnn_state, kept)
    same = train(replace(m, seed=7), tcfg)  # the same weights built from the seed: the same run
    np.testing.assert_array_equal(r.history["loss"].to_numpy(), same.history["loss"].to_numpy())
    _assert_state_equal(user_rnn.state_dict(), kept)
    assert not np.array_equal(r.history["loss"].to_numpy(), train(m, tcfg).history["loss"].to_numpy())


# == Stacks: the live loss and dL/dh against the module's own forward ========================================


@pytest.mark.parametrize(
    "name", ["nn.LSTM-2layer", "nn.GRU-3layer", "nn.RNN-relu-3layer-bf", "LRU", "MinGRU", "SelectiveSSM"]
)
def test_training_loss_and_dh_match_the_modules_own_forward(name):
    """The training loop's step-by-step loss (live view) against the module's own forward, float64."""
    from bptt_core.data.tasks import make_task
    from bptt_core.learning.training import batch_loss, live_view, parameter_groups

    m = make_module(ALL[name])
    readout = nn.Linear(H, 2).double()
    data = make_task("gaussian", T, 3, 0, I)
    data = type(data)(
        data.x.double(), torch.randn(T, 3, 2, dtype=torch.float64), data.loss_mask, data.name, data.loss_on
    )
    loss, hs = batch_loss(live_view(m), readout, data)
    out, _ = m(data.x.transpose(0, 1)) if getattr(m, "batch_first", False) else m(data.x)
    out = out.transpose(0, 1) if getattr(m, "batch_first", False) else out
    ref = ((readout(out[data.loss_mask]) - data.y[data.loss_mask]) ** 2).sum() / 3
    params = list(m.parameters())
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(loss, params), torch.autograd.grad(ref, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert len(hs) == T and hs[0].shape == (3, H if isinstance(m, nn.RNNBase) else m.state_size)
    groups = parameter_groups(m, readout)
    assert sum(len(v) for k, v in groups.items() if k != "readout") == len(params)  # every parameter in one group


# == Hypothesis: TrainConfig raises only ValueError ==========================================================

TRAIN_FIELDS = {
    "steps": st.integers(1, 20),
    "optimizer": st.sampled_from(["sgd", "adam"]),
    "lr": st.floats(1e-4, 1.0),
    "batch_size": st.integers(1, 8),
    "clip": st.sampled_from(["none", "norm", "value"]),
    "clip_threshold": st.floats(1e-3, 10.0),
    "k1": st.integers(0, 12),
    "k2": st.integers(0, 12),
    "seed": st.integers(0, 100),
}


@st.composite
def train_kwargs(draw):
    kw = {}
    for name, valid in TRAIN_FIELDS.items():
        choice = draw(st.sampled_from(["valid"] * 5 + ["wild"] * 4 + ["absent"] * 2))
        if choice != "absent":
            kw[name] = draw(valid if choice == "valid" else WILD)
    return kw


@settings(PROFILE, max_examples=300)
@given(train_kwargs())
def test_train_config_raises_only_value_error(kw):
    from bptt_core.learning.training import TrainConfig

    cfg = only_value_errors(TrainConfig, **kw)
    if cfg is not None:
        assert (cfg.k1 == 0) == (cfg.k2 == 0) and cfg.lr > 0 and math.isfinite(cfg.clip_threshold)
        assert TrainConfig(**cfg.to_dict()) == cfg
