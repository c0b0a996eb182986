"""The training player's frames (bptt_core.learning.player): each snapshot's diagnostics, eigenvalue paths
followed across frames, the frames table, the frame nearest a step, progress and cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt_core.config import ModelConfig
from bptt_core.figures.player import player_eigenvalue_figure, player_singular_values_figure
from bptt_core.flow.jacobians import jacobian_log_norms, loss_gradient_norms
from bptt_core.flow.spectra import lyapunov_exponents
from bptt_core.learning.player import eigen_paths, frames, probe, restore
from bptt_core.learning.training import TrainConfig, train
from bptt_core.models.recurrent import cell_view, recurrent_matrix
from tests.helpers.player import PLAYER_SMALL, RUNS, _run


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


def test_frames_report_progress_and_stop_when_their_job_is_cancelled():
    from bptt_core.progress import Cancelled, reporting

    r = train(ModelConfig(task="gaussian", **PLAYER_SMALL), TrainConfig(steps=4, batch_size=2, snapshots=4))

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
    r = train(
        ModelConfig(cell="lstm", task="gaussian", **PLAYER_SMALL), TrainConfig(steps=2, batch_size=2, snapshots=2)
    )
    fr = frames(r, n_lyapunov=1)
    assert fr[0].matrix.startswith("W_hg")
    assert "W_hg" in player_eigenvalue_figure(fr).layout.title.text
    assert "W_hg" in player_singular_values_figure(fr).layout.title.text


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
