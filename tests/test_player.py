"""The training player: bounded weight snapshots that are the weights of a run stopped there, the
diagnostics of each, and Plotly animations with one frame per snapshot."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

from bptt_core.config import ModelConfig
from bptt_core.figures.player import (
    player_dh_figure,
    player_eigenvalue_figure,
    player_heatmap_figure,
    player_lyapunov_figure,
    player_singular_values_figure,
    show_frame,
)
from bptt_core.flow.jacobians import jacobian_log_norms, loss_gradient_norms
from bptt_core.flow.spectra import lyapunov_exponents
from bptt_core.learning.player import eigen_paths, frames, probe, restore
from bptt_core.learning.training import (
    MAX_STEPS,
    TrainConfig,
    _Snapshots,
    max_snapshots,
    snapshot_steps,
    train,
    twin_runs,
)
from bptt_core.models.build import build_model
from bptt_core.models.recurrent import cell_view, recurrent_matrix

SMALL = dict(seq_len=6, hidden_size=4)

# (name, model config, train config, which run): plain BPTT, Adam on an LSTM, TBPTT on a GRU, a clipped twin
RUNS = [
    ("rnn-sgd", ModelConfig(task="gaussian", **SMALL), TrainConfig(steps=5, batch_size=3, lr=0.05, snapshots=3), None),
    (
        "lstm-adam",
        ModelConfig(cell="lstm", task="adding", **SMALL),
        TrainConfig(steps=5, batch_size=2, optimizer="adam", snapshots=3),
        None,
    ),
    (
        "gru-tbptt",
        ModelConfig(cell="gru", task="sine", **SMALL),
        TrainConfig(steps=5, batch_size=2, lr=0.05, k1=2, k2=3, snapshots=3),
        None,
    ),
    (
        "twin-norm",
        ModelConfig(task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, **SMALL),
        TrainConfig(steps=5, batch_size=2, lr=0.05, clip_threshold=0.5, snapshots=2),
        "norm",
    ),
]

# A run whose unclipped twin explodes (as in test_training), and whose clipped twins clip often.
EXPLODING = ModelConfig(
    task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, seq_len=10, hidden_size=8
)
EXPLODING_TRAIN = dict(steps=12, batch_size=4, lr=0.1)


def _run(m, cfg, twin):
    return train(m, cfg) if twin is None else twin_runs(m, cfg)[twin]


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
    twins = twin_runs(EXPLODING, TrainConfig(**EXPLODING_TRAIN, clip_threshold=1.0, snapshots=2))
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


@pytest.mark.parametrize("name, m, cfg, twin", RUNS[:3], ids=[r[0] for r in RUNS[:3]])
def test_frames_hold_the_diagnostics_of_each_snapshot(name, m, cfg, twin):
    r = _run(m, cfg, twin)
    fr = frames(r, n_lyapunov=3)
    assert len(fr) == len(r.snapshots)
    x, y = probe(r)
    for f, snap in zip(fr, r.snapshots, strict=True):
        assert (f.step, f.loss, f.reasons) == (snap.step, snap.loss, snap.reasons)
        W = snap.rnn_state["weight_hh_l0"].to(torch.float64)
        H = m.hidden_size
        block = {"rnn": W, "lstm": W[2 * H : 3 * H], "gru": W[2 * H :]}[m.cell]  # the matrix the spectra describe
        assert np.array_equal(f.eigenvalues, torch.linalg.eigvals(block).numpy())  # bit for bit
        np.testing.assert_array_equal(f.singular_values, torch.linalg.svdvals(block).numpy())
        assert f.rho == float(np.abs(f.eigenvalues).max()) and f.sigma1 == f.singular_values[0]
        rnn, readout = restore(r, snap)
        assert torch.equal(recurrent_matrix(cell_view(rnn)), block)
        np.testing.assert_array_equal(f.L, jacobian_log_norms(rnn, x))
        np.testing.assert_array_equal(f.dh_norms, loss_gradient_norms(rnn, readout, x, y))
        np.testing.assert_allclose(f.lyapunov, lyapunov_exponents(rnn, x, n_exponents=3) / math.log(10), rtol=1e-12)
    assert not np.array_equal(fr[0].eigenvalues, fr[-1].eigenvalues)  # training moved the spectrum


def test_eigen_paths_follow_each_eigenvalue_whatever_order_lapack_returns():
    rng = np.random.default_rng(0)
    base = rng.normal(size=6) + 1j * rng.normal(size=6)
    moves = [base + 0.01 * k * (1 + 0.5j) for k in range(5)]  # small steps: each eigenvalue's nearest is itself
    perms = [rng.permutation(6) for _ in moves]
    shuffled = [m[p] for m, p in zip(moves, perms, strict=True)]
    P = eigen_paths(shuffled)
    assert P.shape == (5, 6)
    for k in range(5):
        np.testing.assert_array_equal(P[k], moves[k][perms[0]])  # column j follows frame 0's j-th eigenvalue
        assert sorted(P[k].tolist(), key=lambda z: (z.real, z.imag)) == sorted(
            shuffled[k].tolist(), key=lambda z: (z.real, z.imag)
        )  # a reordering, nothing lost or invented


PLAYER_FIGURES = [
    player_heatmap_figure,
    player_dh_figure,
    player_singular_values_figure,
    player_lyapunov_figure,
    player_eigenvalue_figure,
]


@pytest.fixture(scope="module")
def clipped_run():
    m = ModelConfig(task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, **SMALL)
    return train(m, TrainConfig(steps=8, batch_size=2, lr=0.05, clip="norm", clip_threshold=0.5, snapshots=3))


@pytest.mark.parametrize("build", PLAYER_FIGURES, ids=lambda f: f.__name__)
def test_player_figure_has_one_frame_per_snapshot_showing_step_and_loss(build, clipped_run):
    fr = frames(clipped_run, n_lyapunov=2)
    fig = build(fr)
    assert len(fig.frames) == len(fr) == len(clipped_run.snapshots)
    names = [f.name for f in fig.frames]
    assert len(set(names)) == len(names)
    for gf, f in zip(fig.frames, fr, strict=True):
        loss = f"{f.loss:.4g}"
        assert f"step {f.step}" in gf.name and loss in gf.name
        assert f"training step {f.step}" in gf.layout.title.text and loss in gf.layout.title.text
        if "clip" in f.reasons:
            assert "clipped" in gf.layout.title.text
    assert any("clip" in f.reasons for f in fr), "this run clips: a clip event must be among the frames"
    # the first frame is what the figure shows before playing
    assert fig.layout.title.text == fig.frames[0].layout.title.text
    # play runs the frames in the browser: an animate button over all frames (args[0] None), and a
    # slider step per frame that jumps to it by name
    (menu,) = fig.layout.updatemenus
    play = menu.buttons[0]
    assert play.method == "animate" and play.args[0] is None and play.args[1]["frame"]["duration"] > 0
    assert menu.buttons[1].method == "animate" and list(menu.buttons[1].args[0]) == [None]  # pause
    (slider,) = fig.layout.sliders
    assert [list(s.args[0]) for s in slider.steps] == [[n] for n in names]
    assert [s.label for s in slider.steps] == [str(f.step) for f in fr]
    fig.to_json()  # serialises (what the page and the HTML report do)


def test_player_heatmap_frames_carry_each_snapshots_matrix_on_one_colour_scale(clipped_run):
    fr = frames(clipped_run)
    fig = player_heatmap_figure(fr)
    vals = np.concatenate([f.L[np.isfinite(f.L)] for f in fr])
    zmin, zmax = fig.data[0].zmin, fig.data[0].zmax
    assert zmin == pytest.approx(vals.min()) and zmax == pytest.approx(vals.max())
    for gf, f in zip(fig.frames, fr, strict=True):
        z = np.asarray(gf.data[0].z, dtype=float)
        fin = np.isfinite(f.L)
        np.testing.assert_array_equal(z[fin], f.L[fin])


def test_player_eigenvalue_paths_grow_frame_by_frame(clipped_run):
    fr = frames(clipped_run)
    P = eigen_paths([f.eigenvalues for f in fr])
    fig = player_eigenvalue_figure(fr, P)
    H = P.shape[1]
    for i, gf in enumerate(fig.frames):
        path, dots = gf.data
        assert len(path.x) == H * (i + 2)  # i + 1 points per eigenvalue and a gap between paths
        np.testing.assert_array_equal(np.asarray(dots.x), P[i].real)
        np.testing.assert_array_equal(np.asarray(dots.y), P[i].imag)


def test_player_refuses_a_run_without_snapshots():
    r = train(ModelConfig(task="gaussian", **SMALL), TrainConfig(steps=2, batch_size=2, snapshots=0))
    assert r.snapshots == [] and frames(r) == []
    with pytest.raises(ValueError, match="frames must hold at least one snapshot"):
        player_heatmap_figure([])


def test_frames_report_progress_and_stop_when_their_job_is_cancelled():
    from bptt_core.progress import Cancelled, reporting

    r = train(ModelConfig(task="gaussian", **SMALL), TrainConfig(steps=4, batch_size=2, snapshots=4))

    class Job:  # a listener of bptt_core.progress
        def __init__(self, cancel_after: int):
            self.seen, self.cancel_after = [], cancel_after

        def progress(self, fraction, message):
            if message.startswith("snapshot"):
                self.seen.append(message)

        def cancelled(self):
            return len(self.seen) > self.cancel_after

    job = Job(cancel_after=10)
    with reporting(job.progress, job.cancelled):
        assert len(frames(r)) == 4
    assert job.seen == [f"snapshot {i + 1} of 4 (training step {i})" for i in range(4)]
    job = Job(cancel_after=1)
    with reporting(job.progress, job.cancelled), pytest.raises(Cancelled):
        frames(r)
    assert len(job.seen) == 2  # stopped at the second snapshot, not after all of them


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
    m = ModelConfig(task="gaussian", **SMALL)
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


def test_frames_table_has_one_row_per_frame(clipped_run):
    from bptt_core.flow.summary import decay_rate
    from bptt_core.learning.player import frames_table

    fr = frames(clipped_run, n_lyapunov=2)
    t = frames_table(fr)
    assert t["step"].tolist() == [f.step for f in fr] and t["loss"].tolist() == [f.loss for f in fr]
    assert t["rho"].tolist() == [f.rho for f in fr] and t["top_lyapunov_log10"].tolist() == [f.lyapunov[0] for f in fr]
    assert t["decay_rate_log10"].tolist() == [decay_rate(f.L) for f in fr]
    assert any("clip" in k for k in t["kept_for"])


def test_gated_frames_name_the_block_their_spectra_describe():
    r = train(ModelConfig(cell="lstm", task="gaussian", **SMALL), TrainConfig(steps=2, batch_size=2, snapshots=2))
    fr = frames(r, n_lyapunov=1)
    assert fr[0].matrix.startswith("W_hg")
    assert "W_hg" in player_eigenvalue_figure(fr).layout.title.text
    assert "W_hg" in player_singular_values_figure(fr).layout.title.text


# -- the chosen frame (a link's <prefix>_frame, the HTML report) ------------------------------------------


@pytest.mark.parametrize(
    "steps, step, index",
    [([0, 5, 10], 0, 0), ([0, 5, 10], 5, 1), ([0, 5, 10], 7, 1), ([0, 5, 10], 8, 2), ([0, 5, 10], 999, 2),
     ([3, 7], 5, 0), ([4], 0, 0)],  # a tie goes to the earlier step
)  # fmt: skip
def test_frame_at_picks_the_kept_snapshot_nearest_to_the_asked_step(steps, step, index):
    from bptt_core.learning.player import frame_at

    assert frame_at(steps, step) == index


@pytest.mark.parametrize("steps, step", [([], 0), ([1, 2], -1), ([1, 2], 1.5), ([1, 2], "3")])
def test_frame_at_refuses_bad_input_naming_it(steps, step):
    from bptt_core.learning.player import frame_at

    with pytest.raises(ValueError, match="step"):
        frame_at(steps, step)


def _json(v) -> str:
    import json

    import plotly.utils

    return json.dumps(v, cls=plotly.utils.PlotlyJSONEncoder)


@pytest.mark.parametrize("build", PLAYER_FIGURES, ids=lambda f: f.__name__)
def test_show_frame_opens_the_animation_at_that_frame(build, clipped_run):
    fr = frames(clipped_run, n_lyapunov=2)
    i = len(fr) - 2
    fig = show_frame(build(fr), i)
    assert fig.layout.sliders[0].active == i
    assert fig.layout.title.text == fig.frames[i].layout.title.text
    assert f"training step {fr[i].step}" in fig.layout.title.text
    frame = fig.frames[i]
    for idx, trace in zip(frame.traces, frame.data, strict=True):  # what the figure draws is frame i's data
        for k, v in trace.to_plotly_json().items():
            if k != "type":
                assert _json(fig.data[idx][k]) == _json(v), (idx, k)
    assert show_frame(build(fr), 0).layout.title.text == fig.frames[0].layout.title.text
    with pytest.raises(ValueError, match="index"):
        show_frame(build(fr), len(fr))
    with pytest.raises(ValueError, match="no frames"):
        show_frame(go.Figure(), 0)


def test_player_panels_take_a_prefix_and_open_at_the_active_frame(clipped_run):
    from bptt_core.report.panels import player_panels

    fr = frames(clipped_run, n_lyapunov=2)
    panels = player_panels(fr, "test run", "tb_play", active=2)
    assert [p.key for p in panels] == [f"tb_play_{k}" for k in ("heatmap", "dh", "eig", "sv", "lyap")]
    for p in panels:
        assert p.figure.layout.sliders[0].active == 2
        assert f"training step {fr[2].step}" in p.figure.layout.title.text
    assert [p.key for p in player_panels(fr, "x")][0] == "cl_play_heatmap"  # the Clipping page's keys by default


def test_the_cost_model_measures_as_many_lyapunov_exponents_as_the_player():
    from bptt_core.analyses import cost
    from bptt_core.learning import player

    assert cost.PLAYER_LYAPUNOV == player.DEFAULT_LYAPUNOV


def test_report_shows_the_players_chosen_frame():
    from bptt_core.report.html import build_report, player_section_of

    m = ModelConfig(task="gaussian", **SMALL)
    tcfg = TrainConfig(steps=6, batch_size=2, lr=0.01, k1=2, k2=3, snapshots=3)
    run = train(m, tcfg)
    step = run.snapshots[1].step
    title, figs = player_section_of(m, dict(train_cfg=tcfg, source="run", step=step, label="TBPTT run"))
    assert title == f"Play training: TBPTT run, training step {step}"
    assert len(figs) == 5
    for _, fig, _ in figs:
        assert fig.layout.sliders[0].active == 1 and f"training step {step}" in fig.layout.title.text
    html = build_report(m, player=dict(train_cfg=tcfg, source="run", step=step, label="TBPTT run", prefix="tb_play"))
    assert f"Play training: TBPTT run, training step {step}" in html
    assert f"training step {step}, loss" in html
    # a Clipping twin, reusing the report's own twins
    html = build_report(m, train_cfg=tcfg, player=dict(train_cfg=tcfg, source="norm", step=0, label="norm twin"))
    assert "Play training: norm twin, training step 0" in html
    for bad, match in [("nope", "player must be a dict"), (dict(train_cfg=tcfg, source="x"), "player\\['source'\\]")]:
        with pytest.raises(ValueError, match=match):
            build_report(m, player=bad)


@pytest.mark.parametrize("k", [(0, 0), (2, 3)], ids=["full", "tbptt"])
def test_a_played_run_from_a_users_model_starts_at_its_weights(k):
    """train(initial=...) (the Truncated BPTT and Gradient flow players on an uploaded model): the first
    snapshot is the user's weights, the run equals one from a model built with them, the model is unchanged."""
    m = ModelConfig(task="gaussian", **SMALL)
    user_rnn, user_readout = build_model(replace(m, seed=7))
    kept = {k_: v.clone() for k_, v in user_rnn.state_dict().items()}
    tcfg = TrainConfig(steps=4, batch_size=2, lr=0.05, k1=k[0], k2=k[1], snapshots=2)
    r = train(m, tcfg, initial=(user_rnn, user_readout))
    _assert_state_equal(r.snapshots[0].rnn_state, kept)
    same = train(replace(m, seed=7), tcfg)  # the same weights built from the seed: the same run
    np.testing.assert_array_equal(r.history["loss"].to_numpy(), same.history["loss"].to_numpy())
    _assert_state_equal(user_rnn.state_dict(), kept)
    assert not np.array_equal(r.history["loss"].to_numpy(), train(m, tcfg).history["loss"].to_numpy())
