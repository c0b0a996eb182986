"""The training player: the diagnostics of every weight snapshot a training run kept.

A run (:func:`bptt_core.learning.training.train`, :func:`~bptt_core.learning.training.twin_runs`, TBPTT training) keeps
snapshots of its weights (evenly spaced steps, clip events, the divergence step; bounded, see
:mod:`bptt_core.learning.training`). :func:`frames` computes, for each, what the pages show for a model at rest:
the gradient-flow matrix L[t, s] = log10 ||dh_t/dh_s|| (Pascanu, Mikolov & Bengio 2013), ||dL/dh_t||,
the eigenvalues and singular values of the recurrent matrix, and the top Lyapunov exponents (QR
method), all on one fixed probe sequence (the task's analysis input), so that the frames differ only
through the weights. The figure builders in :mod:`bptt_core.figures` turn the frames into Plotly
animations (one ``go.Frame`` each), which play in the browser without the server.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from bptt_core.config import check_int
from bptt_core.flow.jacobians import check_norm, jacobian_log_norms, loss_gradient_norms
from bptt_core.flow.spectra import lyapunov_exponents
from bptt_core.flow.summary import decay_rate
from bptt_core.flow.unroll import MATRIX_LABEL
from bptt_core.models.build import build_task
from bptt_core.models.recurrent import ACTIVATION_GAMMA, cell_view, recurrent_matrix
from bptt_core.progress import checkpoint

from .training import Snapshot, TrainResult

DEFAULT_LYAPUNOV = 5  # top exponents per frame: the first few decide long-lag growth


@dataclass
class Frame:
    """The diagnostics of one snapshot (what one animation frame shows)."""

    step: int  # 0-based training step (weights before that step's update)
    loss: float  # the training loss at that step
    reasons: tuple[str, ...]  # why the snapshot was kept: "even", "clip", "diverged"
    L: np.ndarray  # (T, T) float64 gradient-flow matrix on the probe sequence (NaN for s > t)
    dh_norms: np.ndarray  # (T,) ||dL/dh_t|| for the probe's last-step loss
    eigenvalues: np.ndarray  # (H,) complex: torch.linalg.eigvals of the recurrent matrix (float64)
    singular_values: np.ndarray  # (H,) descending
    lyapunov: np.ndarray  # (m,) top Lyapunov exponents, log10 per step
    rho: float  # spectral radius
    sigma1: float  # largest singular value
    gamma: float  # bound on |phi'| (1 for gated cells)
    matrix: str = "W_hh"  # which matrix the spectra describe (a gated cell's candidate block)

    @property
    def label(self) -> str:
        """The frame's name: its training step and loss (unique within one run)."""
        return f"step {self.step} · loss {_fmt(self.loss)}"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def restore(result: TrainResult, snapshot: Snapshot) -> tuple[nn.Module, nn.Linear]:
    """Copies of the run's model and readout holding the snapshot's weights (the run is not changed)."""
    rnn, readout = copy.deepcopy(result.rnn), copy.deepcopy(result.readout)
    rnn.load_state_dict(snapshot.rnn_state)
    readout.load_state_dict(snapshot.readout_state)
    return rnn, readout


def probe(result: TrainResult) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed sequence every frame is measured on: the first sequence of the task's analysis batch
    (:func:`bptt_core.models.build.build_task`), x (T, I) and y (T, O)."""
    data = build_task(result.model_cfg)
    return data.x[:, 0], data.y[:, 0]


def frames(
    result: TrainResult,
    x=None,
    y=None,
    norm="fro",
    block: str = "h",
    n_lyapunov: int = DEFAULT_LYAPUNOV,
    progress=None,
) -> list[Frame]:
    """One :class:`Frame` per snapshot of ``result``, in step order.

    ``x`` (T, I) and ``y`` (T, O): the probe sequence (default :func:`probe`); ||dL/dh_t|| is for the
    squared error on its last step (:func:`bptt_core.flow.jacobians.loss_gradient_norms`). ``norm`` and
    ``block`` as in :func:`bptt_core.jacobian_log_norms`; ``n_lyapunov`` top exponents (at most the
    state size). A diverged snapshot whose weights are not finite gets NaN diagnostics.

    Cost: one gradient-flow matrix, one Lyapunov run and one backward pass per snapshot, about 2.3 times
    one heatmap (~30 ms of CPU a frame at the default H = 64, T = 50 on one thread; bench/bench_player.py),
    so 41 frames of three twins are seconds: a page runs it as a background job. Inside one, every frame
    reports its progress and stops when the job is cancelled (:func:`bptt_core.progress.checkpoint`);
    ``progress(fraction, message)``, when given, receives the progress instead (a job that trained first
    maps it onto its own second half).
    """
    if not isinstance(result, TrainResult):
        raise ValueError(f"result must be a TrainResult, got {type(result).__name__}")
    norm = check_norm(norm)
    n_lyapunov = check_int("n_lyapunov", n_lyapunov, 1, 10**6)
    if x is None or y is None:
        px, py = probe(result)
        x, y = (px if x is None else x), (py if y is None else y)
    out, n = [], len(result.snapshots)
    for i, snap in enumerate(result.snapshots):
        message = f"snapshot {i + 1} of {n} (training step {snap.step})"
        if progress is None:
            checkpoint(i / n, message)
        else:
            checkpoint()  # a cancelled job stops here
            progress(i / n, message)
        out.append(_frame(result, snap, x, y, norm, block, n_lyapunov))
    return out


def _frame(result: TrainResult, snap: Snapshot, x, y, norm, block, n_lyapunov: int) -> Frame:
    rnn, readout = restore(result, snap)
    view = cell_view(rnn)
    W = recurrent_matrix(view)  # (H, H) float64
    gamma = ACTIVATION_GAMMA[view.activation] if view.kind == "rnn" else 1.0
    matrix = MATRIX_LABEL[view.kind]
    if not all(torch.isfinite(p).all() for p in [*rnn.parameters(), *readout.parameters()]):
        T, H = torch.as_tensor(x).shape[0], view.hidden_size
        nan = np.full(H, np.nan)
        return Frame(
            snap.step,
            snap.loss,
            snap.reasons,
            np.full((T, T), np.nan),
            np.full(T, np.nan),
            nan.astype(complex),
            nan,
            np.full(min(n_lyapunov, view.state_size), np.nan),
            math.nan,
            math.nan,
            gamma,
            matrix,
        )
    eig = torch.linalg.eigvals(W).numpy()  # (H,) complex
    sv = torch.linalg.svdvals(W).numpy()  # (H,)
    lyap = lyapunov_exponents(rnn, x, n_exponents=min(n_lyapunov, view.state_size)) / math.log(10)
    return Frame(
        step=snap.step,
        loss=snap.loss,
        reasons=snap.reasons,
        L=jacobian_log_norms(rnn, x, norm=norm, block=block),
        dh_norms=loss_gradient_norms(rnn, readout, x, y),
        eigenvalues=eig,
        singular_values=sv,
        lyapunov=lyap,
        rho=float(np.abs(eig).max()),
        sigma1=float(sv[0]),
        gamma=gamma,
        matrix=matrix,
    )


def frame_at(steps, step: int) -> int:
    """The index of the kept snapshot nearest to training ``step`` (the earlier one on a tie), among
    ``steps`` (the kept steps, ascending): a link's chosen frame, which a run's settings may have moved."""
    steps = [int(s) for s in steps]
    if not steps:
        raise ValueError("steps must hold at least one kept snapshot step, got none")
    step = check_int("step", step, 0, 10**9)
    return min(range(len(steps)), key=lambda i: (abs(steps[i] - step), steps[i]))


def frames_table(frames: list[Frame]) -> pd.DataFrame:
    """One row per frame, for the CSV beside the player: step, loss, why it was kept, rho, sigma_1, the top
    Lyapunov exponent and the decay rate of its gradient-flow matrix (both log10 per step)."""
    return pd.DataFrame(
        {
            "step": [f.step for f in frames],
            "loss": [f.loss for f in frames],
            "kept_for": [" ".join(f.reasons) for f in frames],
            "rho": [f.rho for f in frames],
            "sigma1": [f.sigma1 for f in frames],
            "top_lyapunov_log10": [float(f.lyapunov[0]) if len(f.lyapunov) else math.nan for f in frames],
            "decay_rate_log10": [decay_rate(f.L) for f in frames],
        }
    )


def eigen_paths(eigenvalues: list[np.ndarray]) -> np.ndarray:
    """(n_frames, H) complex: each frame's eigenvalues reordered so that column j follows one
    eigenvalue through training (greedy nearest match to the previous frame, closest pairs first).

    Eigenvalues come out of LAPACK in no fixed order, so a path needs this matching; where two
    eigenvalues pass close to each other a path may swap partners, which the picture shows as a kink.
    """
    if not eigenvalues:
        return np.zeros((0, 0), dtype=complex)
    out = [np.asarray(eigenvalues[0], dtype=complex)]
    for ev in eigenvalues[1:]:
        ev = np.asarray(ev, dtype=complex)
        prev = out[-1]
        if not (np.isfinite(ev).all() and np.isfinite(prev).all()):
            out.append(ev)
            continue
        d = np.abs(prev[:, None] - ev[None, :])  # (H, H): previous j against new i
        order = np.argsort(d, axis=None)
        taken_prev, taken_new = np.zeros(len(prev), bool), np.zeros(len(ev), bool)
        matched = np.empty(len(prev), dtype=complex)
        left = len(prev)
        for flat in order:
            j, i = divmod(int(flat), len(ev))
            if not taken_prev[j] and not taken_new[i]:
                matched[j] = ev[i]
                taken_prev[j] = taken_new[i] = True
                left -= 1
                if not left:
                    break
        out.append(matched)
    return np.stack(out)
