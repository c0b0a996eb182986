"""Training a small recurrent model with BPTT, recording what the gradient does at every step.

Gradient clipping as studied by Pascanu, Mikolov & Bengio (2013, "On the difficulty of training
recurrent neural networks"): rescale all gradients when their global L2 norm exceeds a threshold,
or clamp every entry to [-c, c], with exactly the semantics of ``torch.nn.utils.clip_grad_norm_``
and ``clip_grad_value_`` (which are called here). Truncated BPTT(k1, k2) as Williams & Peng (1990)
define it, through :func:`bptt_core.learning.truncation.tbptt_gradients`.

The loss of a batch is docs/design.md's per-sequence loss averaged over the batch:
L = (1/B) sum_b sum_{t in loss_mask} sum_j (yhat_{t,j}^b - y_{t,j}^b)^2.
``dh_norms[i, t]`` is ||dL/dh_t|| at training step i, the Frobenius norm of the (B, H) gradient of
that batch loss with respect to the batch of hidden states h_t (the total derivative, through all
later steps), taken by autograd with respect to every h_t in the same backward pass as the
parameter gradient.

Twin runs (:func:`twin_runs`) start from the same weights and see the same batches, so their
histories are bit-for-bit identical until the first step at which clipping changes a gradient.

Batches are streamed: step i's batch is drawn from its own seed (:func:`batch_seed`) when step i
runs, so memory holds one batch however many steps run, and the values are exactly those of
:func:`batches` (which builds the whole list, for tests and small uses). Every run takes
``progress(fraction, message)`` (called after every step) and ``cancel()`` (checked before every
step and between the forward and backward pass; True raises :class:`Cancelled`), so a background
job (:mod:`dashboard.jobs`) can show how far it is and stop within one training step.

Snapshots (the training player, docs/design.md): every run keeps copies of its weights at chosen
steps. The snapshot of step k holds the weights *before* step k's update, the ones that produced
row k of the history (its loss), so it equals bit for bit the final weights of the same run stopped
after k steps (``TrainConfig(steps=k)``). Kept: ``TrainConfig.snapshots`` steps evenly spaced over
0 .. steps - 1, every step whose gradient clipping changed (at most ``snapshots`` of them: when there
are more, every other one is dropped, so the kept ones stay evenly spread over the clip events), and
the divergence step. A run therefore holds at most ``2 * snapshots + 1`` snapshots
(:func:`max_snapshots`), whatever its step count, and at most ``MAX_SNAPSHOT_BYTES`` of them: a
model too large for that keeps fewer evenly spaced and clip snapshots (the divergence step is always
kept).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from bptt_core.config import (
    CLIPPING_STORY_SETTINGS,
    MAX_BATCH,
    MAX_SEED,
    MAX_SEQ_LEN,
    ModelConfig,
    check_choice,
    check_float,
    check_int,
)
from bptt_core.data.tasks import TaskData, make_task
from bptt_core.models.build import build_model
from bptt_core.models.cells import DiagonalView
from bptt_core.models.recurrent import CellView, StackedView, cell_kind
from bptt_core.progress import Cancelled

from .truncation import check_truncation

if TYPE_CHECKING:  # pandas is optional (the dashboard and figures extras): a run's history imports it
    import pandas as pd

OPTIMIZERS = ("sgd", "adam")
CLIPS = ("none", "norm", "value")
MAX_STEPS = 5000
MAX_LR = 100.0
MAX_CLIP = 1e6
PARAM_GROUPS = ("W_ih", "W_hh", "bias", "readout")
TWINS = ("unclipped", "norm", "value")
MAX_SNAPSHOTS = 100  # evenly spaced snapshots a run may ask for (clip events add as many again, plus 1)
MAX_SNAPSHOT_BYTES = 64 * 2**20  # the snapshots of one run (the largest LSTM's weights are ~6.3 MB a copy)

# One row per training step. grad_* are gradient norms before clipping, norm_* weight norms
# before the update (the weights that produced this step's loss).
HISTORY_COLUMNS = (
    "step",  # 0-based training step
    "loss",  # batch loss L (batch mean of the per-sequence loss)
    "grad_norm",  # global L2 norm of all gradients, before clipping
    "grad_norm_clipped",  # the same after clipping (equal when clipping did not act)
    "clipped",  # clipping changed at least one gradient entry
    "nonfinite",  # the loss or a gradient was NaN/inf: the run stops here
    *(f"grad_{g}" for g in PARAM_GROUPS),
    *(f"norm_{g}" for g in PARAM_GROUPS),
)

Progress = Callable[[float, str], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the model and the task come from a :class:`ModelConfig`."""

    steps: int = 300  # optimiser updates, each on a fresh batch
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01  # learning rate
    batch_size: int = 16  # sequences per batch (ModelConfig.batch_size is not used for training)
    clip: str = "none"  # none | norm (global L2 norm) | value (clamp each entry)
    clip_threshold: float = 1.0  # max norm, or max |entry|
    k1: int = 0  # TBPTT(k1, k2): update every k1 steps; 0 with k2 = 0 means full BPTT
    k2: int = 0  # ... backpropagating k2 steps; 0 with k1 = 0 means full BPTT
    seed: int = 0  # seeds the stream of batches (the weights come from ModelConfig.seed)
    snapshots: int = 20  # weight snapshots evenly spaced over the run (plus clip events, divergence)

    def __post_init__(self):
        check_int("steps", self.steps, 1, MAX_STEPS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr", self.lr, 0.0, MAX_LR, lo_open=True)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_choice("clip", self.clip, CLIPS)
        check_float("clip_threshold", self.clip_threshold, 0.0, MAX_CLIP, lo_open=True)
        check_int("k1", self.k1, 0, MAX_SEQ_LEN)
        check_int("k2", self.k2, 0, MAX_SEQ_LEN)
        if (self.k1 == 0) != (self.k2 == 0):
            raise ValueError(
                f"k1 and k2 must both be in [1, {MAX_SEQ_LEN}] for TBPTT(k1, k2), or both 0 for full BPTT; "
                f"got k1={self.k1}, k2={self.k2}"
            )
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("snapshots", self.snapshots, 0, MAX_SNAPSHOTS)
        for f in fields(self):  # normalise numpy / float-typed values so equal configs hash equal
            v = getattr(self, f.name)
            if f.type == "int":
                object.__setattr__(self, f.name, int(v))
            elif f.type == "float":
                object.__setattr__(self, f.name, float(v))

    @property
    def truncated(self) -> bool:
        return self.k1 > 0

    def to_dict(self) -> dict:
        return asdict(self)


# The Clipping page's defaults (bptt_core/config.py says why these): a TrainConfig.
CLIPPING_STORY = TrainConfig(**CLIPPING_STORY_SETTINGS, clip="none")


@dataclass
class Snapshot:
    """The weights a run had at one step (before that step's update), and why they were kept."""

    step: int  # 0-based training step: these weights produced history row ``step``
    loss: float  # that row's loss (NaN or inf at the divergence step)
    reasons: tuple[str, ...]  # "even", "clip", "diverged" (one step may be kept for several)
    rnn_state: dict[str, torch.Tensor]  # state_dict of the recurrent module (cloned)
    readout_state: dict[str, torch.Tensor]  # state_dict of the readout (cloned)


def snapshot_steps(steps: int, count: int) -> list[int]:
    """``count`` training steps evenly spaced over 0 .. steps - 1, first and last included (fewer when
    steps < count)."""
    if count <= 0 or steps <= 0:
        return []
    if count == 1:
        return [0]
    return sorted({round(i * (steps - 1) / (count - 1)) for i in range(count)})


def max_snapshots(train_cfg: TrainConfig, snapshot_bytes: int = 0) -> int:
    """The most snapshots one run keeps: the evenly spaced ones, as many clip events, the divergence.

    ``snapshot_bytes``: the size of one snapshot (the model's and readout's weights); the count is
    lowered so that all of them fit in ``MAX_SNAPSHOT_BYTES``."""
    return 2 * snapshot_count(train_cfg, snapshot_bytes) + 1


def snapshot_count(train_cfg: TrainConfig, snapshot_bytes: int = 0) -> int:
    """How many evenly spaced (and at most how many clip) snapshots a run keeps: ``train_cfg.snapshots``,
    fewer when ``2 n + 1`` copies of ``snapshot_bytes`` would exceed ``MAX_SNAPSHOT_BYTES``."""
    if snapshot_bytes <= 0:
        return train_cfg.snapshots
    return max(0, min(train_cfg.snapshots, (MAX_SNAPSHOT_BYTES // snapshot_bytes - 1) // 2))


def state_bytes(*modules: nn.Module) -> int:
    """Bytes of one copy of the modules' state_dicts (what a snapshot holds)."""
    return sum(v.numel() * v.element_size() for m in modules for v in m.state_dict().values())


class _Snapshots:
    """Collects a run's snapshots within :func:`max_snapshots`."""

    def __init__(self, train_cfg: TrainConfig, snapshot_bytes: int = 0):
        count = snapshot_count(train_cfg, snapshot_bytes)
        self.even = set(snapshot_steps(train_cfg.steps, count))
        self.clip_cap = count
        self.clip_stride = 1  # keep every clip_stride-th clip event (doubled whenever the cap is hit)
        self.n_clips = 0
        self.kept: dict[int, Snapshot] = {}

    def decide(self, step: int, loss: float, clipped: bool, diverged: bool, rnn: nn.Module, readout) -> None:
        """Called after clipping and before the optimiser's update, so the weights are still step ``step``'s."""
        reasons = []
        if step in self.even:
            reasons.append("even")
        if clipped and self.clip_cap > 0:
            if self.n_clips % self.clip_stride == 0:
                reasons.append("clip")
            self.n_clips += 1
        if diverged:
            reasons.append("diverged")
        if reasons:
            self.kept[step] = Snapshot(step, loss, tuple(reasons), _clone_state(rnn), _clone_state(readout))
            self._thin_clips()

    def _thin_clips(self) -> None:
        clip_steps = sorted(k for k, v in self.kept.items() if "clip" in v.reasons)
        if len(clip_steps) <= self.clip_cap:
            return
        self.clip_stride *= 2
        for i, k in enumerate(clip_steps):
            if i % 2:  # keep the 0th, 2nd, 4th, ... clip events: still evenly spread over them
                snap = self.kept[k]
                rest = tuple(r for r in snap.reasons if r != "clip")
                if rest:
                    self.kept[k] = Snapshot(snap.step, snap.loss, rest, snap.rnn_state, snap.readout_state)
                else:
                    del self.kept[k]

    def result(self) -> list[Snapshot]:
        return [self.kept[k] for k in sorted(self.kept)]


def _clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@dataclass
class TrainResult:
    history: pd.DataFrame  # one row per step run, columns HISTORY_COLUMNS
    dh_norms: np.ndarray  # (steps run, T) float64: ||dL/dh_t|| at every step and time
    diverged_at: int | None  # the step whose loss or gradient went non-finite, or None
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    rnn: nn.Module  # the trained model (as it was when the run stopped)
    readout: nn.Linear
    loss_on: str  # "all" or "last": which steps the task's loss covers
    seconds: float  # wall-clock time of the run
    snapshots: list[Snapshot] = field(default_factory=list)  # by step; see the module docstring

    @property
    def first_clip(self) -> int | None:
        """The first step at which clipping changed a gradient, or None."""
        hit = np.flatnonzero(self.history["clipped"].to_numpy())
        return int(hit[0]) if len(hit) else None

    def dh_frame(self) -> pd.DataFrame:
        """``dh_norms`` as a DataFrame: index step, one column per time t (for CSV export)."""
        import pandas as pd  # optional dependency (the table)

        frame = pd.DataFrame(self.dh_norms, columns=[f"t{t}" for t in range(self.dh_norms.shape[1])])
        frame.index.name = "step"
        return frame


# -- data ----------------------------------------------------------------------------------------


def batch_seed(seed: int, step: int) -> int:
    """The data seed of training step ``step``: one fixed stream of batches per seed."""
    return (int(seed) * 1_000_003 + int(step)) % (MAX_SEED + 1)


def batch_at(model_cfg: ModelConfig, train_cfg: TrainConfig, step: int) -> TaskData:
    """The batch of training step ``step``, drawn from its own seed: no step depends on another's draw."""
    return make_task(
        model_cfg.task, model_cfg.seq_len, train_cfg.batch_size, batch_seed(train_cfg.seed, step), model_cfg.input_size
    )


def stream_batches(model_cfg: ModelConfig, train_cfg: TrainConfig) -> Iterator[TaskData]:
    """The batches every run with these settings sees, in order, drawn one at a time as they are used."""
    return (batch_at(model_cfg, train_cfg, i) for i in range(train_cfg.steps))


def batches(model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[TaskData]:
    """All of :func:`stream_batches` at once (the runs themselves stream; this holds steps x batch)."""
    return list(stream_batches(model_cfg, train_cfg))


# -- one step --------------------------------------------------------------------------------------


def live_view(rnn: nn.Module):
    """A view over the module's own parameters (not detached), so autograd reaches them: a
    :class:`CellView`, a :class:`StackedView` of them, or a live :class:`DiagonalView`."""
    kind = cell_kind(rnn)
    if kind not in ("rnn", "lstm", "gru"):
        return DiagonalView(rnn, live=True)
    p = dict(rnn.named_parameters())
    act = getattr(rnn, "nonlinearity", "tanh") if kind == "rnn" else "tanh"
    layers = []
    for k in range(getattr(rnn, "num_layers", 1)):
        W_ih, W_hh = p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"]
        zeros = torch.zeros(W_hh.shape[0], dtype=W_hh.dtype)
        b_ih, b_hh = p.get(f"bias_ih_l{k}", zeros), p.get(f"bias_hh_l{k}", zeros)
        layers.append(CellView(kind, act, W_ih.shape[1], W_hh.shape[1], W_ih, W_hh, b_ih, b_hh))
    return layers[0] if len(layers) == 1 else StackedView(layers)


def batch_loss(view, readout: nn.Linear, data: TaskData) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The batch loss L and every h_t (B, H) of the graph (their gradients are the total dL/dh_t).

    h_t is what the readout reads: a stack's top layer's h; the diagonal cells' whole real state
    (the readout then reads the cell's output y_t from it)."""
    x, y, mask = data.x, data.y, data.loss_mask  # (T, B, I), (T, B, O), (T,)
    T, B, _ = x.shape
    H = view.hidden_size
    diagonal = isinstance(view, DiagonalView)
    top = view.layer_slice(view.num_layers - 1) if isinstance(view, StackedView) else slice(0, view.state_size)
    top = slice(top.start, top.start + H) if not diagonal else top
    state = view.initial_state(None, B)  # (B, S)
    hs, seen = [], []
    for t in range(T):
        state = view.step(x[t], state)
        if top == slice(0, state.shape[1]):
            h = state
        else:  # the tensor both the readout and step t+1 read
            h = state[:, top]
            state = torch.cat([state[:, : top.start], h, state[:, top.stop :]], 1)
        hs.append(h)
        seen.append(view.output(x[t], h) if diagonal else h)
    h_used = torch.stack([seen[t] for t in torch.nonzero(mask).flatten().tolist()])  # (T_loss, B, H)
    err = readout(h_used) - y[mask]  # (T_loss, B, O)
    return (err**2).sum() / B, hs


def parameter_groups(rnn: nn.Module, readout: nn.Linear) -> dict[str, list[nn.Parameter]]:
    """The history's parameter groups. Stacks: every layer's W_ih / W_hh. Diagonal cells: "W_hh" is
    what sets the recurrence a_t (``recurrence_params``: the LRU's nu_log and theta_log, the gates
    of minGRU / minLSTM, the SSM's A_log and step), "bias" their other biases, "W_ih" the rest."""
    p = dict(rnn.named_parameters())
    if hasattr(rnn, "recurrence_params"):
        rec = set(rnn.recurrence_params)
        return {
            "W_ih": [v for k, v in p.items() if k not in rec and not k.startswith("bias")],
            "W_hh": [p[k] for k in rnn.recurrence_params],
            "bias": [v for k, v in p.items() if k not in rec and k.startswith("bias")],
            "readout": list(readout.parameters()),
        }
    return {
        "W_ih": [v for k, v in p.items() if k.startswith("weight_ih")],
        "W_hh": [v for k, v in p.items() if k.startswith("weight_hh")],
        "bias": [v for k, v in p.items() if k.startswith("bias")],
        "readout": list(readout.parameters()),
    }


def _group_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    if not tensors:  # a group this cell does not have (the LRU has no other biases)
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def truncated_gradients(rnn: nn.Module, readout: nn.Linear, data: TaskData, k1: int, k2: int) -> list[torch.Tensor]:
    """TBPTT(k1, k2) estimate of dL/dtheta for the batch loss: :func:`bptt_core.learning.truncation.tbptt_gradients`
    on the whole batch (each sequence truncated alike; its loss is summed over sequences), over B."""
    from .truncation import tbptt_gradients  # the TBPTT engine lives in its own module

    B = data.x.shape[1]
    grads = tbptt_gradients(rnn, readout, data.x, data.y, k1, k2, loss_mask=data.loss_mask)
    return [g / B for g in grads]


def clip_gradients(params: list[nn.Parameter], clip: str, threshold: float) -> tuple[float, float, bool]:
    """Clip ``params``' gradients in place with torch's own functions.

    Returns the global norm before and after, and whether any entry changed.
    """
    grads = [p.grad for p in params]
    before = torch.nn.utils.get_total_norm(grads)
    if clip == "none":
        return float(before), float(before), False
    kept = [g.clone() for g in grads]
    if clip == "norm":
        torch.nn.utils.clip_grad_norm_(params, threshold)
    else:
        torch.nn.utils.clip_grad_value_(params, threshold)
    changed = any(not torch.equal(a, p.grad) for a, p in zip(kept, params, strict=True))
    after = torch.nn.utils.get_total_norm([p.grad for p in params])
    return float(before), float(after), changed


def _make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    return torch.optim.SGD(params, lr=cfg.lr)


# -- runs ------------------------------------------------------------------------------------------


def _check_configs(model_cfg, train_cfg) -> None:
    if not isinstance(model_cfg, ModelConfig):
        raise ValueError(f"model_cfg must be a ModelConfig, got {type(model_cfg).__name__}")
    if not isinstance(train_cfg, TrainConfig):
        raise ValueError(f"train_cfg must be a TrainConfig, got {type(train_cfg).__name__}")
    # make_task names the setting (seq_len, input_size) when the task does not fit the model.
    make_task(model_cfg.task, model_cfg.seq_len, 1, 0, model_cfg.input_size)
    if train_cfg.k1 or train_cfg.k2:  # refused up front, never clamped: TBPTT(k1, k2) needs k <= T
        check_truncation(model_cfg.seq_len, train_cfg.k1, train_cfg.k2)


def _run(
    rnn: nn.Module,
    readout: nn.Linear,
    data: Iterable[TaskData],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    progress: Progress | None,
    cancel: CancelCheck | None = None,
) -> TrainResult:
    import pandas as pd  # optional dependency (the history table), imported before the first step

    t0 = time.perf_counter()
    n_steps = train_cfg.steps
    loss_on = None
    view = live_view(rnn)
    groups = parameter_groups(rnn, readout)
    params = [*rnn.parameters(), *readout.parameters()]
    opt = _make_optimizer(params, train_cfg)
    rows, dh, diverged = [], [], None
    snaps = _Snapshots(train_cfg, state_bytes(rnn, readout))
    for i, batch in enumerate(data):
        _check_cancel(cancel)
        loss_on = loss_on or batch.loss_on
        opt.zero_grad(set_to_none=True)
        loss, hs = batch_loss(view, readout, batch)
        _check_cancel(cancel)
        if train_cfg.truncated and math.isfinite(loss.item()):  # a non-finite loss: full BPTT's NaN grads mark it
            dh_grads = torch.autograd.grad(loss, hs, allow_unused=True)
            for p, g in zip(params, truncated_gradients(rnn, readout, batch, train_cfg.k1, train_cfg.k2), strict=True):
                p.grad = g.detach().clone()
        else:
            grads = torch.autograd.grad(loss, params + hs, allow_unused=True)  # one backward pass for both
            for p, g in zip(params, grads, strict=False):
                p.grad = torch.zeros_like(p) if g is None else g
            dh_grads = grads[len(params) :]
        dh_grads = [torch.zeros_like(h) if g is None else g for h, g in zip(hs, dh_grads, strict=True)]  # unused: 0
        dh.append(torch.linalg.vector_norm(torch.stack(dh_grads), dim=(1, 2)).double().numpy())  # (T,)
        scalars = torch.stack(
            [_group_norm([p.grad for p in ps]) for ps in groups.values()]
            + [_group_norm([p.detach() for p in ps]) for ps in groups.values()]
        ).tolist()
        before, after, changed = clip_gradients(params, train_cfg.clip, train_cfg.clip_threshold)
        loss_value = float(loss.detach())
        nonfinite = not (math.isfinite(loss_value) and math.isfinite(before))
        rows.append((i, loss_value, before, after, changed, nonfinite, *scalars))
        snaps.decide(i, loss_value, changed, nonfinite, rnn, readout)
        if nonfinite:  # marked and stopped: no update is taken from a NaN/inf gradient
            diverged = i
            break
        opt.step()
        if progress is not None:
            progress((i + 1) / n_steps, f"step {i + 1}/{n_steps}, loss {loss_value:.4g}")
    if progress is not None and diverged is not None:
        progress(1.0, f"diverged at step {diverged}: the loss or a gradient was not finite")
    history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    return TrainResult(
        history=history,
        dh_norms=np.stack(dh) if dh else np.zeros((0, model_cfg.seq_len)),
        diverged_at=diverged,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        rnn=rnn,
        readout=readout,
        loss_on=loss_on,
        seconds=time.perf_counter() - t0,
        snapshots=snaps.result(),
    )


def _check_cancel(cancel: CancelCheck | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled("the run was cancelled")


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    initial: tuple[nn.Module, nn.Linear] | None = None,
) -> TrainResult:
    """Train the model of ``model_cfg`` on its task; full BPTT, or TBPTT(k1, k2) when set.

    The weights come from :func:`bptt_core.models.build.build_model` (seeded by ``model_cfg.seed``); each
    step draws a fresh batch of ``train_cfg.batch_size`` sequences, the same stream for the same
    ``train_cfg.seed``. With TBPTT (k1, k2 >= 1; a k longer than seq_len means seq_len),
    the parameter gradient is the batch mean of the per-sequence TBPTT(k1, k2) estimates, while ``dh_norms`` still records full BPTT's ||dL/dh_t|| on that batch
    (what the truncation cuts off). A non-finite loss or gradient marks the step (``nonfinite``,
    ``diverged_at``) and stops the run without an update; nothing is raised.
    ``progress(fraction, message)`` is called after every step; ``cancel()`` returning True stops the
    run within one step by raising :class:`Cancelled`. Batches are streamed (:func:`stream_batches`).
    ``initial``: (rnn, readout) to start from instead (a user's trained model; copied, never changed),
    as in :func:`twin_runs`.
    """
    _check_configs(model_cfg, train_cfg)
    rnn, readout = build_model(model_cfg) if initial is None else (copy.deepcopy(initial[0]), copy.deepcopy(initial[1]))
    return _run(rnn, readout, stream_batches(model_cfg, train_cfg), model_cfg, train_cfg, progress, cancel)


def twin_runs(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    progress: Progress | None = None,
    initial: tuple[nn.Module, nn.Linear] | None = None,
    cancel: CancelCheck | None = None,
) -> dict[str, TrainResult]:
    """Three runs that differ only through clipping: "unclipped", "norm" and "value".

    Same initial weights, same batches, same optimiser; ``train_cfg.clip`` is overridden and
    ``train_cfg.clip_threshold`` is the threshold of both clipped twins. Their histories are
    identical bit for bit up to the first step where clipping acts. A twin that diverges is marked
    and stopped; the others go on. ``initial``: (rnn, readout) to start from instead
    of ``build_model(model_cfg)`` (a user's trained model; copied, never changed), matching
    ``model_cfg``'s cell, sizes and task output width. Each twin streams the same batches (drawn again
    from their seeds, so memory holds one batch); ``cancel`` as in :func:`train`.
    """
    _check_configs(model_cfg, train_cfg)
    rnn, readout = build_model(model_cfg) if initial is None else initial
    out = {}
    for j, (name, clip) in enumerate(zip(TWINS, ("none", "norm", "value"), strict=True)):
        cfg = TrainConfig(**{**train_cfg.to_dict(), "clip": clip})
        sub = None
        if progress is not None:

            def sub(f: float, msg: str, j=j, name=name) -> None:
                progress((j + f) / len(TWINS), f"{name}: {msg}")

        data = stream_batches(model_cfg, cfg)
        out[name] = _run(copy.deepcopy(rnn), copy.deepcopy(readout), data, model_cfg, cfg, sub, cancel)
    return out
