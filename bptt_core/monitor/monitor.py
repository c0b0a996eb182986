"""Gradient-flow diagnostics logged from a user's own training loop (docs/design.md, "monitor").

Two lines in a plain PyTorch loop::

    monitor = GradientFlowMonitor(model, "runs/exp1", every=50, clip=1.0)
    out, h_n = model.rnn(x)          # the recurrent module's output of this step
    monitor.watch(out)               # 1: so ||dL/dh_t|| can be read after backward
    loss.backward()
    monitor.step()                   # 2: after backward, before clipping and the optimizer
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)

Every ``every`` steps (the first included) it records, for the weights of that step:
- the global gradient norm before clipping over all of ``model``'s parameters, computed by the
  same function ``clip_grad_norm_`` uses (so it equals its return value), each parameter's norm,
  and whether clipping at ``clip`` fires (clip_grad_norm_'s own rule: c / (||g|| + 1e-6) < 1);
- ||dL/dh_t|| for every t of the first sequence of the batch: the gradient that reached the watched
  output (the loss's direct dependence on h_t, ``dl_dh``), and the total one through the recurrence
  (``dl_dh_total``, that gradient carried back by the exact step Jacobians: what reaches step t);
- the exact gradient-flow matrix L[t, s] = log10 ||dh_t/dh_s|| of that sequence
  (:func:`bptt_core.flow.jacobians.jacobian_log_norms`), its decay rate and memory horizon;
- the top Lyapunov exponents of the network driven by that sequence (Benettin et al. 1980's QR
  method, log10 per step), and rho and sigma_1 of each layer's recurrent matrix (Pascanu, Mikolov
  & Bengio 2013).

For a stacked module (num_layers >= 2) the matrix is jacobian_log_norms's default: the top layer's
d h_t / d h_s, every other part of the state at s held fixed; the Lyapunov exponents are those of
the whole state (every layer's); rho and sigma_1 are given for each layer. batch_first only changes
which axis the first sequence is read from. For the diagonal cells of :mod:`bptt_core.models.cells` the
watched output is the cell's output y_t (for the LRU, C h_t + D x_t, not h_t itself).

Where it goes: TensorBoard event files when the optional ``tensorboard`` package is installed
(``torch.utils.tensorboard.SummaryWriter``, tags in :data:`SCALAR_TAGS`, the heatmap as an image)
and always a run folder the dashboard reads
(:mod:`bptt_core.monitor.runs`): ``manifest.json`` with the SHA-256 of every data file,
``history.npz`` and one ``steps/step_XXXXXXXX.npz`` per logged step. Both in ``log_dir``.

The training loop is never broken by the monitor: a diagnostic that fails is reported as a
:class:`MonitorWarning` (and to the ``bptt_core.monitor`` logger) and the rest are still logged,
unless ``strict=True``. Wrong use (a model without a recurrent module, ``watch`` on a tensor that
needs no gradient, a log_dir that cannot be written) is a ValueError naming what is wrong.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import math
import os
import tempfile
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from bptt_core.models.recurrent import cell_kind, cell_view

from .diagnostics import HeavySpec, heavy_diagnostics
from .worker import Unreadable, WorkerProcess

log = logging.getLogger(__name__)

RUN_FORMAT = "bptt-explorer-run"
RUN_VERSION = 1
MANIFEST = "manifest.json"
HISTORY = "history.npz"
STEPS_DIR = "steps"
CLIP_EPS = 1e-6  # clip_grad_norm_'s own: clip_coef = max_norm / (total_norm + 1e-6)
N_EXPONENTS = 16  # top Lyapunov exponents kept (the QR method's cost grows with the count)
MAX_PENDING = 4  # logged steps waiting for the background at most: memory stays bounded, the loop rarely waits
SCALAR_TAGS = (
    "grad_norm/global",
    "clip/fired",
    "flow/decay_rate",
    "flow/memory_horizon",
    "lyapunov/top",
    "spectrum/rho",
    "spectrum/sigma1",
)  # plus grad_norm/<parameter name> for every parameter with a gradient
HEATMAP_TAG = "flow/heatmap"
# The history's scalar columns, in history.npz (each an array over logged steps).
HISTORY_COLUMNS = (
    "step",
    "grad_norm",
    "clip_fired",
    "decay_rate",
    "memory_horizon",
    "lyapunov_top",
    "rho",
    "sigma1",
    "flow_min",  # the finite range of the matrix: one colour scale for every logged step
    "flow_max",
)


class MonitorWarning(RuntimeWarning):
    """A diagnostic could not be computed at a logged step; training goes on."""


@dataclass
class MonitorConfig:
    every: int = 50  # log on steps 0, every, 2 * every, ... (counted in calls to step())
    clip: float | None = None  # the threshold the loop clips at (global L2 norm); None: not recorded
    norm: str = "fro"  # norm of the gradient-flow matrix: "fro" or 2
    n_exponents: int = N_EXPONENTS  # top Lyapunov exponents (at most the state size)
    memory_threshold: float = 1e-3  # memory horizon: first lag below this fraction of lag 0


@dataclass
class _Capture:
    """What one logged step saw of the first sequence: its input and initial state, and dL/d output."""

    x: torch.Tensor | None = None  # (T, I), the recurrent module's input
    h0: torch.Tensor | None = None  # (num_layers, S) or None (zeros)
    grad: torch.Tensor | None = None  # (T, H), dL/d output of the first sequence
    watched: bool = False
    notes: list[str] = field(default_factory=list)


def find_recurrent_module(model: nn.Module, module: str | nn.Module | None = None) -> tuple[str, nn.Module]:
    """(name, module): the one recurrent module of ``model`` (``model`` itself if it is one).

    ``module``: its name in ``model.named_modules()`` or the module itself, needed when there are
    several. A ValueError says what was found when there is none, or more than one.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    found = [(name, m) for name, m in model.named_modules() if _is_recurrent(m)]
    if module is not None:
        for name, m in model.named_modules():
            if (isinstance(module, str) and name == module) or m is module:
                cell_kind(m)  # a ValueError naming the type if it is not recurrent
                return name, m
        raise ValueError(
            f"module={module if isinstance(module, str) else type(module).__name__!r} is not in the model; "
            f"its recurrent modules: {', '.join(repr(n) for n, _ in found) or 'none'}"
        )
    if not found:
        kinds = sorted({type(m).__name__ for m in model.modules()})[:8]
        raise ValueError(
            "the model has no recurrent module (torch.nn.RNN, LSTM, GRU or bptt_core.ElmanRNN) to monitor; "
            f"it holds {', '.join(kinds)}"
        )
    if len(found) > 1:
        raise ValueError(
            f"the model has {len(found)} recurrent modules ({', '.join(repr(n) for n, _ in found)}): "
            "name the one to monitor with module=NAME"
        )
    return found[0]


def _is_recurrent(m: nn.Module) -> bool:
    try:
        cell_kind(m)
    except ValueError:
        return False
    return True


def check_supported(rnn: nn.Module) -> None:
    if getattr(rnn, "bidirectional", False):
        raise ValueError("bidirectional recurrent modules are not supported: bidirectional must be False")
    if getattr(rnn, "proj_size", 0):
        raise ValueError(f"LSTM with projections is not supported: proj_size must be 0, got {rnn.proj_size}")


def tensorboard_wanted(tensorboard: bool | str) -> bool:
    """Whether to write event files: ``"auto"`` when the tensorboard package is installed (it is an
    optional dependency: the monitor's run folder needs none); True only where it is (else ImportError)."""
    installed = importlib.util.find_spec("tensorboard") is not None
    if tensorboard is True and not installed:
        raise ImportError(
            'tensorboard=True needs the tensorboard package: pip install "bptt-explorer[tensorboard]" '
            '(or tensorboard="auto", which writes event files only where it is installed)'
        )
    return installed if tensorboard == "auto" else bool(tensorboard)


def _summary_writer(log_dir: Path):
    # Local: torch.utils.tensorboard imports the optional tensorboard package.
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def total_grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """The global L2 norm of the gradients exactly as ``clip_grad_norm_`` computes it (same function)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0, error_if_nonfinite=False, foreach=None)


def clip_fires(total_norm: torch.Tensor, clip: float) -> bool:
    """Whether ``clip_grad_norm_(params, clip)`` rescales the gradients: its clip_coef < 1."""
    coef = clip / (total_norm + CLIP_EPS)
    return bool(coef < 1.0)


# -- the heatmap as an image, without a plotting library ------------------------------------------

_BLUE = np.array([33, 102, 172], dtype=float)  # vanishing
_RED = np.array([178, 24, 43], dtype=float)  # exploding
_WHITE = np.array([247, 247, 247], dtype=float)
_GREY = np.array([200, 200, 200], dtype=float)  # s > t: no entry
IMAGE_MIN_PX, IMAGE_MAX_PX = 256, 800


def heatmap_rgb(L: np.ndarray) -> np.ndarray:
    """The gradient-flow matrix as an (H, W, 3) uint8 image: row t (downwards), column s, blue for
    norms below 1 and red above, scaled by the largest |log10| present; grey where s > t; exact
    zeros (-inf) the darkest blue. Enlarged to at least 256 px (nearest neighbour), strided above 800."""
    L = np.asarray(L, dtype=float)
    T = L.shape[0]
    if T > IMAGE_MAX_PX:
        stride = math.ceil(T / IMAGE_MAX_PX)
        L = L[::stride, ::stride]
    finite = L[np.isfinite(L)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    scale = scale if scale > 0 else 1.0
    v = np.clip(np.nan_to_num(L, nan=0.0, neginf=-scale, posinf=scale) / scale, -1, 1)[..., None]  # (T, T, 1)
    rgb = np.where(v < 0, _WHITE + (-v) * (_BLUE - _WHITE), _WHITE + v * (_RED - _WHITE))
    rgb[np.isnan(L)] = _GREY
    k = max(1, math.ceil(IMAGE_MIN_PX / L.shape[0]))
    rgb = np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    return np.round(rgb).astype(np.uint8)


def background_mode(model: nn.Module) -> str | bool:
    """What background="auto" means for this model here: "process" when the training loop leaves the
    worker a core (a model on a GPU, or torch's intra-op threads fewer than this process's cores),
    else False (the loop itself)."""
    on_accelerator = any(p.device.type != "cpu" for p in model.parameters())
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return "process" if on_accelerator or torch.get_num_threads() < cores else False


# -- the monitor -----------------------------------------------------------------------------------


class GradientFlowMonitor:
    """Log gradient-flow diagnostics of ``model``'s recurrent module every ``every`` steps.

    ``model``: a ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (any num_layers, batch_first or not), a cell
    of ``bptt_core`` (ElmanRNN, MinGRU, MinLSTM, LRU, SelectiveSSM), or a module holding exactly one
    of them (``module=`` names it when there are several). ``log_dir``: the run folder (created; one
    that already holds a run is refused unless ``overwrite=True``). ``clip``: the global-norm
    threshold the loop clips at, to record whether it fires. ``strict``: raise instead of warning
    when a diagnostic fails. ``norm``: of the flow matrix, "fro" or 2. ``n_exponents``: Lyapunov
    exponents kept. ``auto_watch``: watch the recurrent module's output by a forward hook, so the
    loop needs only ``step()`` (what the Lightning callback uses). ``tensorboard``: write event
    files: "auto" (the default) when the ``tensorboard`` package is installed (the ``tensorboard``
    extra), True always (an ImportError saying what to install without it), False never; the run
    folder is written either way. ``background``: where the heavy diagnostics (flow matrix,
    Lyapunov exponents, spectra) run, on a copy of the step's weights: True or "process" in a
    worker process at the lowest CPU priority (:mod:`bptt_core.monitor.worker`), "thread" in a
    thread of this process, False in the loop itself (step() then returns them). "auto" (the
    default): the worker process when the loop leaves it something to run on (the model on a GPU,
    or torch using fewer threads than there are cores), else the loop, where torch's threads are its
    own (a worker beside a loop that keeps every core busy only waits, and the loop waits for it;
    :func:`background_mode`). The exact matrix costs about 15-20 training steps of the README's
    example: +30 % at every=50 in the loop, ~0 % in the worker (``python bench/bench_monitor.py``).
    ``close()`` waits for the background.
    """

    def __init__(
        self,
        model: nn.Module,
        log_dir,
        every: int = 50,
        clip: float | None = None,
        strict: bool = False,
        module: str | nn.Module | None = None,
        norm: str = "fro",
        n_exponents: int = N_EXPONENTS,
        auto_watch: bool = False,
        tensorboard: bool | str = "auto",
        background: bool | str = "auto",
        overwrite: bool = False,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number >= 1, got {every!r}")
        if clip is not None:
            if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not math.isfinite(clip) or clip <= 0:
                raise ValueError(f"clip must be a positive finite number or None, got {clip!r}")
            clip = float(clip)
        if norm not in ("fro", 2):
            raise ValueError(f"norm must be 'fro' or 2, got {norm!r}")
        if isinstance(n_exponents, bool) or not isinstance(n_exponents, int) or n_exponents < 1:
            raise ValueError(f"n_exponents must be a whole number >= 1, got {n_exponents!r}")
        if not (isinstance(tensorboard, bool) or tensorboard == "auto"):
            raise ValueError(f"tensorboard must be 'auto', True or False, got {tensorboard!r}")
        write_events = tensorboard_wanted(tensorboard)  # before anything is written: a missing package stops here
        if not (isinstance(background, bool) or background in ("auto", "process", "thread")):
            raise ValueError(f"background must be 'auto', True, False, 'process' or 'thread', got {background!r}")
        self.model = model
        self.name, self.rnn = find_recurrent_module(model, module)
        check_supported(self.rnn)
        self.kind = cell_kind(self.rnn)
        self.num_layers = getattr(self.rnn, "num_layers", 1)
        self.batch_first = bool(getattr(self.rnn, "batch_first", False))
        self.hidden_size = self.rnn.hidden_size
        self.state_size = cell_view(self.rnn).state_size  # every layer's state: (h, c) for an LSTM
        self.cfg = MonitorConfig(every=every, clip=clip, norm=norm, n_exponents=n_exponents)
        self.strict = strict
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.log_dir = _writable_dir(log_dir)
        _clear_earlier_run(self.log_dir, overwrite)
        (self.log_dir / STEPS_DIR).mkdir(exist_ok=True)
        self.steps_seen = 0  # calls to step()
        self.history: list[dict] = []
        self.param_norms: list[list[float]] = []
        self.files: dict[str, str] = {}  # run-folder file -> sha256
        self.errors: list[dict] = []
        self._capture = _Capture()
        self._closed = False
        self.writer = _summary_writer(self.log_dir) if write_events else None
        background = background_mode(model) if background == "auto" else background
        self.background = {True: "process", False: None}.get(background, background)  # type: ignore[arg-type]
        background = self.background
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradient-flow") if background else None
        self._pending: deque[Future] = deque()  # logged steps in the background, oldest first
        self._worker = self._start_worker() if background == "process" else None
        self._hooks = [self.rnn.register_forward_pre_hook(self._on_forward_pre, with_kwargs=True)]
        if auto_watch:
            self._hooks.append(self.rnn.register_forward_hook(self._on_forward))
        self._write_manifest()

    # -- the two calls in the training loop ----------------------------------------------------

    @property
    def logging_now(self) -> bool:
        """Whether the coming ``step()`` is a logged one."""
        return self.steps_seen % self.cfg.every == 0

    def watch(self, output) -> None:
        """The recurrent module's output of this step (or its ``(output, h_n)`` tuple): after backward,
        its gradient gives ||dL/dh_t|| of the first sequence. Call before ``loss.backward()``."""
        if isinstance(output, PackedSequence) or (isinstance(output, tuple) and isinstance(output[0], PackedSequence)):
            raise ValueError(
                "watch() got a PackedSequence: pass the padded output (torch.nn.utils.rnn.pad_packed_sequence) "
                "so that time steps can be told apart"
            )
        if isinstance(output, tuple):
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"watch() needs the recurrent module's output tensor, got {type(output).__name__}")
        if not output.requires_grad:
            raise ValueError(
                "watch() got a tensor that needs no gradient (requires_grad=False): pass the recurrent module's "
                "output from a forward pass with autograd on (not under torch.no_grad() and not detached)"
            )
        if output.dim() not in (2, 3) or output.shape[-1] != self.hidden_size:
            raise ValueError(
                f"watch() needs the recurrent module's output, (T, B, {self.hidden_size}) or (B, T, "
                f"{self.hidden_size}) with batch_first, got shape {tuple(output.shape)}"
            )
        if not self.logging_now or self._closed:
            return  # nothing is read on unlogged steps: no hook, no cost
        self._capture.watched = True
        self._capture.grad = None
        output.register_hook(self._grad_hook(output.dim()))

    def step(self) -> dict | None:
        """After ``loss.backward()``, before clipping and ``optimizer.step()``. Returns what was logged
        at this step (a dict; with ``background=True`` only the gradient norms, clip/fired and
        ||dL/dh_t||, the rest reaching ``history`` later), or None on an unlogged step."""
        if self._closed:
            raise ValueError("step() after close(): the monitor is closed")
        n = self.steps_seen
        self.steps_seen += 1
        while self._pending and self._pending[0].done():
            self._settle_oldest(n)
        if n % self.cfg.every:
            self._capture = _Capture()
            return None
        cap, self._capture = self._capture, _Capture()
        try:
            return self._log_step(n, cap)
        except Exception as e:  # the loop must go on: nothing the monitor does may stop training
            if self.strict:
                raise
            self._warn("logging", n, e)
            return None

    def wait(self) -> None:
        """Wait until the background has finished every logged step so far (``history`` and the run
        folder are then complete up to now); what it raised is raised (strict) or warned about."""
        while self._pending:
            self._settle_oldest(self.steps_seen)

    def close(self) -> None:
        """Wait for the background work (if any), remove the hooks, close the event files."""
        if self._closed:
            return
        self._closed = True
        for h in self._hooks:
            h.remove()
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            if self._worker is not None:
                self._worker.close()
            if self.writer is not None:
                self.writer.close()

    def __enter__(self):
        return self

    def __deepcopy__(self, memo):
        # The module's hooks point at the monitor: a copy of the module (copy.deepcopy(model), or a
        # cell's own analysis view) shares the monitor instead of copying its writer and threads.
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- hooks -------------------------------------------------------------------------------------

    def _on_forward_pre(self, module, args, kwargs):
        if not self.logging_now or not torch.is_grad_enabled() or self._closed:
            return None
        try:
            inp = args[0] if args else kwargs.get("input", kwargs.get("x"))
            hx = args[1] if len(args) > 1 else kwargs.get("hx", kwargs.get("h0"))
            self._capture.x, self._capture.h0 = self._first_sequence(inp, hx)
        except Exception as e:
            self._capture.x = None
            self._capture.notes.append(f"could not read the input: {e}")
        return None

    def _on_forward(self, module, args, output):
        if self.logging_now and torch.is_grad_enabled() and not self._closed:
            out = output[0] if isinstance(output, tuple) and not isinstance(output, PackedSequence) else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                self.watch(out)

    def _first_sequence(self, inp, hx) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not isinstance(inp, torch.Tensor):
            raise ValueError(f"the input is a {type(inp).__name__}, not a tensor (PackedSequence is not read)")
        if inp.dim() == 2:  # unbatched (T, I)
            x, pick = inp, (lambda h: h)
        else:
            x = inp[0] if self.batch_first else inp[:, 0]
            pick = lambda h: h[:, 0]  # noqa: E731  (hx is (L, B, H) whatever batch_first says)
        h0 = None
        if hx is not None:
            parts = hx if isinstance(hx, tuple) else (hx,)
            h0 = torch.cat([pick(p).detach() for p in parts], dim=-1)  # (L, S_l): (h, c) for an LSTM
            h0 = h0.reshape(-1).clone()  # the full state, layer by layer, as jacobian_log_norms takes it
        return x.detach().clone(), h0

    def _grad_hook(self, dim: int):
        def hook(grad):
            if dim == 2:
                g = grad
            else:
                g = grad[0] if self.batch_first else grad[:, 0]
            self._capture.grad = g.detach().clone()  # (T, H)

        return hook

    # -- the diagnostics of a logged step -------------------------------------------------------

    def _log_step(self, n: int, cap: _Capture) -> dict:
        params = [p for _, p in self.params]
        total = total_grad_norm(params)
        rec: dict = {"step": n, "grad_norm": float(total)}
        rec["clip_fired"] = float(clip_fires(total, self.cfg.clip)) if self.cfg.clip is not None else float("nan")
        names = [name for name, p in self.params]
        pnorms = [float(p.grad.detach().norm()) if p.grad is not None else float("nan") for _, p in self.params]
        arrays: dict[str, np.ndarray] = {}
        for note in cap.notes:
            self._warn("input", n, note)
        if cap.watched and cap.grad is not None:
            arrays["dl_dh"] = cap.grad.to(torch.float64).norm(dim=-1).cpu().numpy()  # (T,)
        elif cap.watched:
            self._warn("dl_dh", n, "the watched output received no gradient (does the loss use it?)")
        else:
            self._warn("dl_dh", n, "watch(output) was not called on this logged step: ||dL/dh_t|| not recorded")
        if self._pool is None:
            return self._heavy(n, rec, names, pnorms, arrays, cap, self.rnn)
        while len(self._pending) >= MAX_PENDING:  # the background is behind: wait, memory stays bounded
            self._settle_oldest(n)
        self._pending.append(self._pool.submit(self._heavy, n, rec, names, pnorms, arrays, cap, self._snapshot()))
        return {**rec, "param_grad_norms": dict(zip(names, pnorms, strict=True)), **arrays}

    def _heavy(self, n: int, rec: dict, names, pnorms, arrays: dict, cap: _Capture, rnn: nn.Module) -> dict:
        """The diagnostics of the weights of step n (``rnn``: the live module, or a copy of it when the
        work runs in the background), then everything written."""
        job = self._job(cap, rnn, "dl_dh" in arrays)
        answer = self._in_worker(n, job) if self._worker is not None else None
        found, problems = answer or heavy_diagnostics(**job)
        return self._finish(n, rec, names, pnorms, arrays, found, problems)

    def _start_worker(self) -> WorkerProcess | None:
        try:
            return WorkerProcess(torch.get_num_threads())
        except OSError as e:  # no process can be started here: the thread does the work
            log.warning("GradientFlowMonitor: no worker process (%s); the diagnostics run in a thread", e)
            return None

    def _in_worker(self, n: int, job: dict):
        """The worker process's answer, or None when this job (and, after a failure, every later one)
        is computed in this process instead: a module the worker cannot unpickle, or a worker gone."""
        try:
            return self._worker.run(job)
        except (Unreadable, OSError, EOFError) as e:  # what the job itself raised (strict) passes through
            worker, self._worker = self._worker, None
            worker.close()
            if isinstance(e, (OSError, EOFError)):  # a lost process is news; an unpicklable module is not
                self._warn("background", n, f"the worker process stopped ({e}); the diagnostics now run in a thread")
            else:
                log.info("GradientFlowMonitor: the worker process cannot take this module (%s): a thread does", e)
            return None

    def _job(self, cap: _Capture, rnn: nn.Module, with_dl_dh: bool) -> dict:
        spec = HeavySpec(self.kind, self.hidden_size, self.num_layers, self.state_size, self.cfg.norm,
                         self.cfg.n_exponents, self.cfg.memory_threshold, self.strict)  # fmt: skip
        return dict(rnn=rnn, x=cap.x, h0=cap.h0, grad=cap.grad if with_dl_dh else None, spec=spec)

    def _finish(self, n: int, rec: dict, names, pnorms, arrays: dict, found: tuple, problems: list) -> dict:
        scalars, heavy_arrays = found
        for what, err in problems:
            self._warn(what, n, err)
        rec |= scalars
        arrays |= heavy_arrays
        self._emit(n, rec, names, pnorms, arrays)
        return {**rec, "param_grad_norms": dict(zip(names, pnorms, strict=True)), **arrays}

    def _snapshot(self) -> nn.Module:
        """A copy of the recurrent module with this step's weights, for the background worker (the loop
        goes on and the optimizer changes the live weights). Copied without its hooks (they hold monitors)."""
        rnn = self.rnn
        hooks = {k: v for k, v in vars(rnn).items() if "hooks" in k and isinstance(v, dict)}
        try:  # the training loop is inside step() now: nothing runs the module while its hooks are away
            rnn.__dict__.update({k: type(v)() for k, v in hooks.items()})
            snap = copy.deepcopy(rnn)
        finally:
            rnn.__dict__.update(hooks)
        for p in snap.parameters():
            p.grad = None
        return snap

    def _settle_oldest(self, n: int) -> None:
        """Wait for the oldest logged step in the background; what it raised is raised (strict) or
        warned about."""
        try:
            self._pending.popleft().result()
        except Exception as e:
            if self.strict:
                raise
            self._warn("background", n, e)

    def _warn(self, what: str, n: int, err) -> None:
        msg = f"GradientFlowMonitor step {n}: {what}: {err}"
        self.errors.append({"step": n, "what": what, "error": str(err)})
        log.warning(msg)
        if self.strict:
            raise ValueError(msg)
        warnings.warn(msg, MonitorWarning, stacklevel=3)

    # -- writing ------------------------------------------------------------------------------

    def _emit(self, n: int, rec: dict, names: list[str], pnorms: list[float], arrays: dict) -> None:
        self.history.append(rec)
        self.param_norms.append(pnorms)
        if self.writer is not None:
            w = self.writer
            w.add_scalar("grad_norm/global", rec["grad_norm"], n)
            for name, v in zip(names, pnorms, strict=True):
                if not math.isnan(v):  # NaN: the parameter got no gradient this step
                    w.add_scalar(f"grad_norm/{name}", v, n)
            if self.cfg.clip is not None:
                w.add_scalar("clip/fired", rec["clip_fired"], n)
            for tag, key in (
                ("flow/decay_rate", "decay_rate"),
                ("flow/memory_horizon", "memory_horizon"),
                ("lyapunov/top", "lyapunov_top"),
                ("spectrum/rho", "rho"),
                ("spectrum/sigma1", "sigma1"),
            ):
                w.add_scalar(tag, rec[key], n)
            for layer in range(self.num_layers) if self.num_layers > 1 else ():
                for q in ("rho", "sigma1"):
                    if f"{q}_l{layer}" in rec:
                        w.add_scalar(f"spectrum/{q}/layer{layer}", rec[f"{q}_l{layer}"], n)
            if "flow" in arrays:
                w.add_image(HEATMAP_TAG, heatmap_rgb(arrays["flow"]), n, dataformats="HWC")
            w.flush()
        self._write_step(n, arrays)
        self._write_history(names)
        self._write_manifest()

    def _write_step(self, n: int, arrays: dict) -> None:
        rel = f"{STEPS_DIR}/step_{n:08d}.npz"
        self.files[rel] = _save_npz(self.log_dir / rel, arrays)

    def _write_history(self, names: list[str]) -> None:
        cols = {c: np.array([r.get(c, math.nan) for r in self.history], dtype=float) for c in HISTORY_COLUMNS}
        cols["step"] = cols["step"].astype(np.int64)
        for layer in range(self.num_layers):
            for q in ("rho", "sigma1"):
                cols[f"{q}_l{layer}"] = np.array([r.get(f"{q}_l{layer}", math.nan) for r in self.history])
        cols["param_grad_norms"] = np.array(self.param_norms, dtype=float).reshape(len(self.history), len(names))
        self.files[HISTORY] = _save_npz(self.log_dir / HISTORY, cols)

    def _write_manifest(self) -> None:
        manifest = {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "torch": torch.__version__,
            "model": {
                "module": self.name,
                "type": type(self.rnn).__name__,
                "cell": self.kind,
                "activation": getattr(self.rnn, "nonlinearity", "tanh") if self.kind == "rnn" else "tanh",
                "input_size": self.rnn.input_size,
                "hidden_size": self.hidden_size,
                "num_layers": self.num_layers,
                "batch_first": self.batch_first,
            },
            "every": self.cfg.every,
            "clip": self.cfg.clip,
            "norm": self.cfg.norm,
            "memory_threshold": self.cfg.memory_threshold,
            "parameters": [n for n, _ in self.params],
            "steps": [r["step"] for r in self.history],
            "errors": self.errors[-100:],
            "files": dict(sorted(self.files.items())),
        }
        _atomic_write(self.log_dir / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def _writable_dir(log_dir) -> Path:
    if not isinstance(log_dir, (str, os.PathLike)) or str(log_dir) == "":
        raise ValueError(f"log_dir must be a folder path, got {log_dir!r}")
    path = Path(log_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"log_dir {str(path)!r} cannot be written: {e.strerror or e}") from None
    return path


def _clear_earlier_run(path: Path, overwrite: bool) -> None:
    """A run folder holds one run: its manifest must list every step file, so an earlier run's files
    are either refused (the default) or removed with ``overwrite=True`` (and its event files with them)."""
    if not (path / MANIFEST).exists():
        return
    if not overwrite:
        raise ValueError(
            f"log_dir {str(path)!r} already holds a run (manifest.json): choose a new folder, or pass overwrite=True "
            "to replace it"
        )
    for f in [
        path / MANIFEST,
        path / HISTORY,
        *(path / STEPS_DIR).glob("step_*.npz"),
        *path.glob("events.out.tfevents.*"),
    ]:
        f.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reader never sees half a file


def _save_npz(path: Path, arrays: dict) -> str:
    """Write arrays (no pickles) to ``path`` atomically; return the file's SHA-256."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)
    return digest
