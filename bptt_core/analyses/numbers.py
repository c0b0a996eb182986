"""One function per analysis, from plain settings to numbers: what every page, the HTML report and the
command line compute (docs/design.md, "From a widget to a figure").

Each ``*_of`` function takes a frozen :class:`~bptt_core.config.ModelConfig` (and an upload or plain
values), so the dashboard can cache it; the report and ``bptt`` call the same functions, so a page, its
report and the command line show the same numbers, bit for bit. The numbers are computed with one
intra-op thread (:func:`bptt_core.resources.single_thread`): a matrix product's reduction order, and so
its last bit, would otherwise depend on how many cores the machine lends torch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from bptt_core.analyses.cost import Cost, played_training_cost, player_cost
from bptt_core.analyses.sources import effective_config, resolve
from bptt_core.config import DIAGONAL_CELLS, Block, ModelConfig, Norm, check_jacobian_memory, state_size
from bptt_core.data.tasks import TASK_MIN_SEQ_LEN, task_input_size, task_output_size
from bptt_core.flow.jacobians import jacobian_log_norms, layer_reach, loss_gradient_norms
from bptt_core.flow.plan import FLOW_FLOP_BUDGET, matrix_flops
from bptt_core.flow.spectra import Spectrum, lyapunov_exponents, spectrum
from bptt_core.flow.summary import decay_rate
from bptt_core.flow.unroll import Unroll, unroll
from bptt_core.learning.calculator import estimate
from bptt_core.learning.training import TrainConfig
from bptt_core.learning.truncation import (
    attach_contribution,
    compare_variants,
    contribution_norms,
    contribution_param,
    contribution_step,
)
from bptt_core.models.build import build_model, build_task
from bptt_core.resources import single_thread

SPECTRAL_NORM_FACTOR = 12  # the spectral norm costs roughly this many chain passes


def problems(cfg: ModelConfig) -> tuple[list[str], list[str]]:
    """(errors, notes) about a combination of settings each valid on its own.

    Errors stop the analysis (the page shows them instead of a traceback); notes say what a
    setting does not do here.
    """
    errors, notes = [], []
    need = TASK_MIN_SEQ_LEN[cfg.task]
    if cfg.seq_len < need:
        errors.append(f"The {cfg.task} task needs a sequence length of at least {need}; it is {cfg.seq_len}.")
    try:
        check_jacobian_memory(cfg.cell, cfg.hidden_size, cfg.seq_len, cfg.num_layers)
    except ValueError as e:
        errors.append(str(e))
    if cfg.cell in DIAGONAL_CELLS and cfg.spectral_radius:
        errors.append(
            f"The {cfg.cell} cell has no recurrent matrix to rescale (its recurrence is the diagonal a(x_t)): "
            "set the spectral radius to 0" + (", and the LRU's ring with r_min / r_max." if cfg.cell == "lru" else ".")
        )
    if cfg.cell == "lru" and (cfg.init != ModelConfig.init or cfg.gain != 1.0):
        notes.append("The LRU ignores the initialisation and gain: it always takes its ring initialisation.")
    if cfg.cell != "rnn" and cfg.activation != "tanh":
        notes.append(
            f"The activation ({cfg.activation}) applies to the vanilla RNN only; the {cfg.cell} uses its own gates."
        )
    if cfg.cell != "lstm" and cfg.forget_bias:
        notes.append(f"The forget-gate bias ({cfg.forget_bias:g}) applies to the LSTM only.")
    if cfg.init == "sparse" and cfg.gain != 1.0:
        notes.append("The sparse init ignores the gain: its spectral radius (0.95 unless set) fixes the scale.")
    return errors, notes


def flow_flops(cfg: ModelConfig, norm="fro") -> float:
    """Rough multiply-adds of the gradient-flow matrix by the method the engine will use."""
    if cfg.cell in DIAGONAL_CELLS:  # the diagonal fast path: about T^2 H / 2 products, either norm
        return 0.5 * cfg.seq_len**2 * cfg.hidden_size
    S = state_size(cfg.cell, cfg.hidden_size, cfg.num_layers)
    spectral = Norm.of(norm) == 2
    return matrix_flops(2 if spectral else "fro", cfg.seq_len, S) * (SPECTRAL_NORM_FACTOR if spectral else 1)


def model_and_sequence(cfg: ModelConfig, upload=None):
    """The seeded model, readout, and the first sequence of the task: x (T, I), y (T, O).

    ``upload``: a :class:`bptt_core.analyses.sources.Upload`: the user's trained model instead (and their
    sequence, if any); ``cfg`` should then be ``sources.effective_config(cfg, upload)``.
    """
    if upload is not None:
        return resolve(cfg, upload)
    rnn, readout = build_model(cfg)
    data = build_task(cfg)
    return rnn, readout, data.x[:, 0], data.y[:, 0], data


@single_thread()
def flow_matrix_of(cfg: ModelConfig, norm="fro", block: str = "h", upload=None, layer: int = -1) -> np.ndarray:
    """L[t, s] = log10 ||dh_t/dh_s|| (T, T) for the first sequence, the chain multiplied in float64.

    float64 whatever the model's precision: the click-to-unroll (bptt_core.flow.unroll, float64) then ends at
    the heatmap's own value to 1e-9 in log10, where a float32 chain differs by ~1e-7 to 1e-6. It costs
    1.1-1.6x the float32 chain (17.7 -> 26.6 ms at the defaults, bench/bench_flow_dtype.py; the split method and the diagonal fast path
    already work in float64); bptt_core.analyses.cost's flow constants are measured on this function."""
    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    block = Block.shown(cfg.cell, block)
    return jacobian_log_norms(rnn, x, norm=Norm.of(norm), layer=layer, block=block, dtype=torch.float64)


@single_thread()
def layer_reach_of(cfg: ModelConfig, norm="fro", upload=None) -> np.ndarray:
    """log10 ||dh^top_T/dh^i_s|| (num_layers, T): the depth x time picture of a stack, at the last step."""

    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    return layer_reach(rnn, x, norm=2 if norm in (2, "2") else "fro")


@single_thread()
def loss_gradients_of(cfg: ModelConfig, upload=None) -> np.ndarray:
    """||dL/dh_t|| (T,) for the loss on the last step."""
    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    return loss_gradient_norms(rnn, readout, x, y)


@single_thread()
def contributions_of(cfg: ModelConfig, t: int, upload=None) -> np.ndarray:
    """Frobenius norms (t + 1,) of the per-step terms of dl_t/dW_hh (t 0-indexed)."""

    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    return contribution_norms(rnn, readout, x, y, t, contribution_param(rnn))


@single_thread()
def spectrum_of(cfg: ModelConfig, upload=None) -> Spectrum:
    rnn, *_ = model_and_sequence(cfg, upload)
    return spectrum(rnn)


@single_thread()
def lyapunov_of(cfg: ModelConfig, max_exponents: int = 64, upload=None) -> np.ndarray:
    """The top Lyapunov exponents in log10 per step (the units of the decay rate)."""
    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    S = state_size(cfg.cell, cfg.hidden_size)
    return lyapunov_exponents(rnn, x, n_exponents=min(S, max_exponents)) / math.log(10)


def comparison_of(cfg: ModelConfig, k1: int, k2: int, repeats: int = 3, upload=None) -> pd.DataFrame:

    rnn, readout, x, y, data = model_and_sequence(cfg, upload)
    ks = tuple(k for k in (10, 20) if k <= cfg.seq_len and (k, k) != (k1, k2))
    return compare_variants(rnn, readout, x, y, ks=ks, k1k2=(k1, k2), loss_mask=data.loss_mask, repeats=repeats)


def spectrum_rate_of(cfg: ModelConfig, upload=None) -> float | None:
    """The gradient-flow matrix's decay rate the Spectrum page compares with, or None where that
    matrix would cost more than FLOW_FLOP_BUDGET."""
    return decay_rate(flow_matrix_of(cfg, upload=upload)) if flow_flops(cfg) <= FLOW_FLOP_BUDGET else None


DEFAULT_K = 10  # the Truncated BPTT page's default k1 = k2 (capped at T)


# The Calculator page's own settings; 0 for num_layers / input_size / output_size: the analysed model's.
CALCULATOR_DEFAULTS = dict(batch_size=32, num_layers=0, input_size=0, output_size=0, truncation=None,
                           dataset_size=10000, lr=0.01, optimizer="sgd", checkpointing=False)  # fmt: skip


# A model other than the Gradient flow page's (another depth or input width) is measured within this
# many multiply-adds (well under a second); the page's own model within the page's FLOW_FLOP_BUDGET.
OTHER_MODEL_FLOW_BUDGET = 1e10


def calculator_estimate_of(cfg: ModelConfig, settings: dict, upload=None):
    """:func:`bptt_core.learning.calculator.estimate` for the model ``cfg`` (or the ``upload``) and the Calculator
    page's ``settings`` (CALCULATOR_DEFAULTS' keys, plus measure_time).

    With the Gradient flow page's depth and input width (and always for an upload) the estimate
    measures that page's own module, readout and input (:func:`model_and_sequence`), so its decay rate
    and memory horizon are the page's. Another depth or width builds the same settings with those, on
    the gaussian task's first sequence; the table names the model and input either way. An upload's
    depth and input width are its own: other values raise ValueError (bptt_core.learning.calculator).
    """

    unknown = set(settings) - set(CALCULATOR_DEFAULTS) - {"measure_time"}
    if unknown:
        raise ValueError(f"calculator settings not known: {sorted(unknown)} (known: {sorted(CALCULATOR_DEFAULTS)})")
    kw = {**CALCULATOR_DEFAULTS, **settings}
    task_I, task_O = task_input_size(cfg.task, cfg.input_size), task_output_size(cfg.task, cfg.input_size)
    layers, I = kw.pop("num_layers") or cfg.num_layers, kw.pop("input_size") or task_I
    out = kw.pop("output_size")
    same = upload is not None or (layers == cfg.num_layers and I == task_I)
    if same:
        rnn, readout, x, _, _ = model_and_sequence(cfg, upload)
        if upload is not None:
            model_label = f"the uploaded {upload.model_name}"
            input_label = (f"the uploaded sequence {upload.sequence_name}" if upload.sequence_sha
                           else f"the {cfg.task} task's first sequence, as on the Gradient flow page")  # fmt: skip
        else:
            model_label = "the sidebar's model (the Gradient flow page's)"
            input_label = f"the {cfg.task} task's first sequence, as on the Gradient flow page"
        budget = FLOW_FLOP_BUDGET
    else:
        try:  # the sidebar's settings (forget-gate bias, the LRU's ring, ...) with this depth and width
            other = ModelConfig(**{**cfg.to_dict(), "num_layers": layers, "input_size": I, "task": "gaussian"})
            rnn, readout, x, _, _ = model_and_sequence(other)
        except ValueError:  # settings ModelConfig does not build (the calculator builds its own, or says why)
            rnn = readout = x = None
        model_label = f"the sidebar's settings with {layers} layer(s) and input size {I}"
        input_label = "the gaussian task's first sequence"
        budget = OTHER_MODEL_FLOW_BUDGET
    O = out or (readout.out_features if upload is not None and readout is not None else task_O)
    if readout is not None and readout.out_features != O:
        readout = None  # another output width: counted by formula, timed with a fresh readout
    e = estimate(
        cfg.cell, I, cfg.hidden_size, O, cfg.seq_len, kw.pop("batch_size"), num_layers=layers,
        activation=cfg.activation if cfg.cell == "rnn" else "tanh", init=cfg.init, gain=cfg.gain,
        spectral_radius=cfg.spectral_radius, seed=cfg.seed, model=rnn, x=x, readout=readout,
        flow_flop_budget=budget, model_label=model_label, input_label=input_label, **kw,
    )  # fmt: skip
    e.settings["same_as_flow"] = same
    return e


PLAYER_SOURCES = ("run", "unclipped", "norm", "value")  # a page's own run (training.train), or a Clipping twin


def check_player(player) -> dict:

    if not isinstance(player, dict) or not isinstance(player.get("train_cfg"), TrainConfig):
        raise ValueError(f"player must be a dict with a TrainConfig under 'train_cfg', got {player!r:.80}")
    if player.get("source", "run") not in PLAYER_SOURCES:
        raise ValueError(f"player['source'] must be one of {', '.join(PLAYER_SOURCES)}, got {player['source']!r:.40}")
    return player


def model_b_of(cfg_b: ModelConfig, upload_b=None) -> ModelConfig:
    """Compare mode's model B as the report analyses it (an upload's architecture applied); ValueError
    naming B for a combination that cannot be analysed."""
    if not isinstance(cfg_b, ModelConfig):
        raise ValueError(f"compare_cfg must be a ModelConfig, got {type(cfg_b).__name__}")
    if upload_b is not None:
        cfg_b = effective_config(cfg_b, upload_b)
    errors = problems(cfg_b)[0]
    if errors:
        raise ValueError("model B: " + "; ".join(errors))
    return cfg_b


def player_cost_of(cfg: ModelConfig, player: dict) -> Cost:
    """What :func:`player_section_of` costs: the run's training (a twin's is counted with the Clipping
    section) and its frames."""
    player = check_player(player)
    tcfg = player["train_cfg"]
    if player.get("source", "run") == "run":
        return played_training_cost(cfg, tcfg)
    return player_cost(cfg, 2 * tcfg.snapshots + 1)


@single_thread()
def unroll_of(cfg: ModelConfig, t: int, s: int, norm="fro", block="h", upload=None) -> Unroll:
    """The chain behind cell (t, s), 0-indexed, of :func:`flow_matrix_of`'s matrix (same model and
    sequence), with the term of dl_t/dW_hh through h_s where the pages show the per-step terms (the loss
    step :func:`~bptt_core.learning.truncation.contribution_step`: the terms hold t + 1 copies of W_hh)."""
    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    u = unroll(rnn, x, t, s, block=Block.shown(cfg.cell, block), norm=Norm.of(norm))
    return attach_contribution(u, rnn, readout, x, y) if t == contribution_step(t + 1) else u
