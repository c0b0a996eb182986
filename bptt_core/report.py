"""What each dashboard page computes, from plain settings, and the self-contained HTML report.

The dashboard calls the ``*_of`` functions below through ``st.cache_data`` (every argument is a frozen
:class:`ModelConfig`, an upload or a plain value, so they hash) and hands the numbers to
:mod:`bptt_core.panels`; :func:`build_report` calls the same functions and the same panel builders, so
the report shows exactly what the pages show.
"""

from __future__ import annotations

import html
import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from . import figures as F
from . import panels as P
from .build import build_model, build_task
from .config import DIAGONAL_CELLS, ModelConfig, check_jacobian_memory, flow_block, norm_of, state_size
from .jacobians import decay_rate, flow_cost, jacobian_log_norms, loss_gradient_norms
from .spectra import Spectrum, lyapunov_exponents, spectrum
from .tasks import TASK_MIN_SEQ_LEN
from .verdicts import gradient_verdict  # noqa: F401 - re-exported: the pages word their verdicts through it

# Above this many multiply-adds the gradient-flow matrix takes seconds: the page asks first.
FLOW_FLOP_BUDGET = 2e11
SPECTRAL_NORM_FACTOR = 12  # the spectral norm costs roughly this many chain passes


# -- checking a configuration ---------------------------------------------------------------------


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
    spectral = norm_of(norm) == 2
    return flow_cost(2 if spectral else "fro", cfg.seq_len, S) * (SPECTRAL_NORM_FACTOR if spectral else 1)


# -- the computations ------------------------------------------------------------------------------


def model_and_sequence(cfg: ModelConfig, upload=None):
    """The seeded model, readout, and the first sequence of the task: x (T, I), y (T, O).

    ``upload``: a :class:`bptt_core.sources.Upload`: the user's trained model instead (and their
    sequence, if any); ``cfg`` should then be ``sources.effective_config(cfg, upload)``.
    """
    if upload is not None:
        from .sources import resolve

        return resolve(cfg, upload)
    rnn, readout = build_model(cfg)
    data = build_task(cfg)
    return rnn, readout, data.x[:, 0], data.y[:, 0], data


def flow_matrix_of(cfg: ModelConfig, norm="fro", block: str = "h", upload=None) -> np.ndarray:
    """L[t, s] = log10 ||dh_t/dh_s|| (T, T) for the first sequence, the chain multiplied in float64.

    float64 whatever the model's precision: the click-to-unroll (bptt_core.unroll, float64) then ends at
    the heatmap's own value to 1e-9 in log10, where a float32 chain differs by ~1e-7 to 1e-6. It costs
    1.1-1.6x the float32 chain (17.7 -> 26.6 ms at the defaults, bench/bench_flow_dtype.py; the split method and the diagonal fast path
    already work in float64); bptt_core.cost's flow constants are measured on this function."""
    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    return jacobian_log_norms(rnn, x, norm=norm_of(norm), block=flow_block(cfg.cell, block), dtype=torch.float64)


def layer_reach_of(cfg: ModelConfig, norm="fro", upload=None) -> np.ndarray:
    """log10 ||dh^top_T/dh^i_s|| (num_layers, T): the depth x time picture of a stack, at the last step."""
    from .jacobians import layer_reach

    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    return layer_reach(rnn, x, norm=2 if norm in (2, "2") else "fro")


def loss_gradients_of(cfg: ModelConfig, upload=None) -> np.ndarray:
    """||dL/dh_t|| (T,) for the loss on the last step."""
    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    return loss_gradient_norms(rnn, readout, x, y)


def contributions_of(cfg: ModelConfig, t: int, upload=None) -> np.ndarray:
    """Frobenius norms (t + 1,) of the per-step terms of dl_t/dW_hh (t 0-indexed)."""
    from .truncation import contribution_norms, contribution_param

    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    return contribution_norms(rnn, readout, x, y, t, contribution_param(rnn))


def spectrum_of(cfg: ModelConfig, upload=None) -> Spectrum:
    rnn, *_ = model_and_sequence(cfg, upload)
    return spectrum(rnn)


def lyapunov_of(cfg: ModelConfig, max_exponents: int = 64, upload=None) -> np.ndarray:
    """The top Lyapunov exponents in log10 per step (the units of the decay rate)."""
    rnn, _, x, _, _ = model_and_sequence(cfg, upload)
    S = state_size(cfg.cell, cfg.hidden_size)
    return lyapunov_exponents(rnn, x, n_exponents=min(S, max_exponents)) / math.log(10)


def comparison_of(cfg: ModelConfig, k1: int, k2: int, repeats: int = 3, upload=None) -> pd.DataFrame:
    from .truncation import compare_variants

    rnn, readout, x, y, data = model_and_sequence(cfg, upload)
    ks = tuple(k for k in (10, 20) if k <= cfg.seq_len and (k, k) != (k1, k2))
    return compare_variants(rnn, readout, x, y, ks=ks, k1k2=(k1, k2), loss_mask=data.loss_mask, repeats=repeats)


def spectrum_rate_of(cfg: ModelConfig, upload=None) -> float | None:
    """The gradient-flow matrix's decay rate the Spectrum page compares with, or None where that
    matrix would cost more than FLOW_FLOP_BUDGET."""
    return decay_rate(flow_matrix_of(cfg, upload=upload)) if flow_flops(cfg) <= FLOW_FLOP_BUDGET else None


# -- the report ------------------------------------------------------------------------------------


def flow_view_of(cfg: ModelConfig, norm="fro", block: str = "h", threshold: float = 1e-3, upload=None):
    """The Gradient flow page's figures for these settings (computed here, assembled by bptt_core.panels)."""
    L = flow_matrix_of(cfg, norm, block, upload)
    t = P.contribution_step(L.shape[0])
    return P.gradient_flow_figures(
        cfg.cell, L, spectrum_of(cfg, upload), loss_gradients_of(cfg, upload), contributions_of(cfg, t, upload),
        norm=norm, block=flow_block(cfg.cell, block), threshold=threshold,
    )  # fmt: skip


def spectrum_panels_of(cfg: ModelConfig, upload=None) -> list[P.Panel]:
    """The Spectrum page's figures for these settings."""
    from .theory import circular_law_radius

    return P.spectrum_figures(
        spectrum_of(cfg, upload), lyapunov_of(cfg, upload=upload), spectrum_rate_of(cfg, upload),
        circular_law_radius(cfg, upload is not None), cfg.cell,
    )  # fmt: skip


DEFAULT_K = 10  # the Truncated BPTT page's default k1 = k2 (capped at T)
# The Calculator page's own settings; 0 for num_layers / input_size / output_size: the analysed model's.
CALCULATOR_DEFAULTS = dict(batch_size=32, num_layers=0, input_size=0, output_size=0, truncation=None,
                           dataset_size=10000, lr=0.01, optimizer="sgd", checkpointing=False)  # fmt: skip
# A model other than the Gradient flow page's (another depth or input width) is measured within this
# many multiply-adds (well under a second); the page's own model within the page's FLOW_FLOP_BUDGET.
OTHER_MODEL_FLOW_BUDGET = 1e10


def calculator_estimate_of(cfg: ModelConfig, settings: dict, upload=None):
    """:func:`bptt_core.calculator.estimate` for the model ``cfg`` (or the ``upload``) and the Calculator
    page's ``settings`` (CALCULATOR_DEFAULTS' keys, plus measure_time).

    With the Gradient flow page's depth and input width (and always for an upload) the estimate
    measures that page's own module, readout and input (:func:`model_and_sequence`), so its decay rate
    and memory horizon are the page's. Another depth or width builds the same settings with those, on
    the gaussian task's first sequence; the table names the model and input either way. An upload's
    depth and input width are its own: other values raise ValueError (bptt_core.calculator).
    """
    from .calculator import estimate
    from .tasks import task_input_size, task_output_size

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


def calculator_of(cfg: ModelConfig, settings: dict, upload=None) -> tuple[pd.DataFrame, P.Panel]:
    """The Calculator page's table and memory figure for the model ``cfg`` (or the ``upload``) and
    the page's ``settings`` (:func:`calculator_estimate_of`)."""
    e = calculator_estimate_of(cfg, settings, upload)
    s = e.settings
    panel = P.activation_memory_figure(
        cfg, s["input_size"], s["output_size"], s["batch_size"], s["num_layers"], s["truncation"] or 0
    )
    return e.table(), panel


def _section(panels: list[P.Panel], lecture: bool) -> list:
    return [(p.title, F.style(p.figure, lecture), p.caption) for p in panels]


def build_report(
    cfg: ModelConfig,
    norm="fro",
    block: str = "h",
    threshold: float = 1e-3,
    unroll: tuple[int, int] | None = None,
    player: dict | None = None,
    k1k2: tuple[int, int] | None = None,
    train_cfg=None,
    lecture: bool = False,
    upload=None,
    calculator: dict | None = None,
    every_page: bool = False,
    budget=None,
    compare_cfg: ModelConfig | None = None,
    compare_upload=None,
) -> str:
    """One self-contained HTML page (plotly.js inlined once) with every figure for these settings.

    ``k1k2``: add the truncated-BPTT heatmap and the measured comparison. ``train_cfg``: add the
    clipping twin runs (a :class:`bptt_core.training.TrainConfig`; this trains three models from the
    settings, not from an upload). ``calculator``: add the calculator's table and memory figure
    (the Calculator page's settings, :data:`CALCULATOR_DEFAULTS`: batch_size, num_layers, input_size,
    output_size, truncation, optimizer, checkpointing, dataset_size, lr, measure_time). ``every_page``: every page's section, each page's own settings taken from
    the arguments given and the page's defaults otherwise (what the dashboard's report button builds).
    ``upload``: a :class:`bptt_core.sources.Upload` to report on instead.
    ``compare_cfg``: compare mode's model B (``compare_upload``: B is that upload, with compare_cfg's
    settings for the rest): adds B's settings, the A/B figures (one colour range, the log10 ratio, the
    spectra in one plane) and the metrics as A, B and B − A of every page included.
    ``budget``: a :class:`bptt_core.cost.Budget` (default: the per-request budget); a report estimated
    over it raises :class:`bptt_core.cost.OverBudget` (a ValueError saying what to lower) before any work.
    ``player``: add a page's training player opened at its chosen frame (:func:`player_section_of`).
    ``unroll``: (t, s), 0-indexed: add that cell's chain (the Gradient flow page's open cell,
    :func:`unroll_section_of`, in ``norm`` and ``block``).
    """
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")
    upload_notes = []
    if upload is not None:
        from .sources import effective_config, input_notes

        upload_notes = input_notes(cfg, upload)
        cfg = effective_config(cfg, upload)
    errors, notes = problems(cfg)
    notes = upload_notes + notes
    if errors:
        raise ValueError("; ".join(errors))
    if every_page:
        from .training import CLIPPING_STORY

        k1k2 = k1k2 or (DEFAULT_K, DEFAULT_K)
        train_cfg = train_cfg or CLIPPING_STORY
        calculator = calculator or {}
    from .cost import REQUEST_BUDGET

    kk = None if k1k2 is None else tuple(min(int(k), cfg.seq_len) for k in k1k2)
    cfg_b = None if compare_cfg is None else model_b_of(compare_cfg, compare_upload)
    cost = report_total_cost(cfg, norm, kk, train_cfg, cfg_b)
    if player is not None:
        cost = cost + player_cost_of(cfg, player)
    cost.check(budget or REQUEST_BUDGET)
    sections: list[tuple[str, list]] = [
        ("Gradient flow", _section(flow_view_of(cfg, norm, block, threshold, upload).panels, lecture)),
    ]
    if unroll is not None:
        sections.append(unroll_section_of(cfg, unroll, norm, block, upload, lecture))
    sections.append(("Spectrum", _section(spectrum_panels_of(cfg, upload), lecture)))
    tables: list[tuple[str, pd.DataFrame]] = []
    if k1k2 is not None:
        k1, k2 = (min(int(k), cfg.seq_len) for k in k1k2)
        view = P.truncation_figure(flow_matrix_of(cfg, norm, block, upload), k1, k2, norm, flow_block(cfg.cell, block))
        df = comparison_of(cfg, k1, k2, upload=upload)
        sections.append(("Truncated BPTT", _section([view.panel, P.comparison_panel(df)], lecture)))
        tables.append(("Full BPTT vs TBPTT vs RTRL (measured)", df))
    if train_cfg is not None:
        from .training import twin_runs

        initial = None
        if upload is not None:
            from .sources import training_start

            initial, note = training_start(cfg, upload)
            notes.append(f"Clipping: {note}")
        runs = twin_runs(cfg, train_cfg, initial=initial)
        hist = {k: r.history for k, r in runs.items()}
        div = {k: r.diverged_at for k, r in runs.items()}
        panels = P.clipping_figures(hist, div, train_cfg.clip_threshold, runs["unclipped"].loss_on)
        sections.append(("Clipping", _section(panels, lecture)))
    if player is not None:
        same = train_cfg is not None and player.get("train_cfg") == train_cfg and player.get("source") in runs
        sections.append(player_section_of(cfg, player, upload, lecture, runs if same else None))
    if calculator is not None:
        table, panel = calculator_of(cfg, calculator, upload)
        sections.append(("Calculator", _section([panel], lecture)))
        tables.append(("Calculator (each number says how it was obtained)", table))
    extra = dict(norm=str(norm), block=block, threshold=threshold)
    if cfg_b is not None:
        runs_a = runs if train_cfg is not None else None
        figs, b_tables = compare_sections_of(cfg, upload, cfg_b, compare_upload, norm, block, threshold, k1k2,
                                             train_cfg, runs_a, lecture)  # fmt: skip
        sections.append(("Compare: A against B", figs))
        tables += b_tables
        extra["B"] = {**cfg_b.to_dict(), **({"model": compare_upload.model_name} if compare_upload else {})}
    return _render(cfg, sections, tables, notes, extra)


# -- click to unroll: the open cell's chain ---------------------------------------------------------


def unroll_section_of(cfg: ModelConfig, cell, norm="fro", block: str = "h", upload=None, lecture: bool = False):
    """("Click to unroll: ∂h(t)/∂h(s)", figures): the chain behind cell ``cell`` = (t, s), 0-indexed, of the
    gradient-flow matrix (:func:`bptt_core.unroll.unroll`, the page's panels); ValueError for a cell outside
    the sequence or a model the unroll cannot read."""
    from .unroll import unroll

    if not (isinstance(cell, tuple | list) and len(cell) == 2):
        raise ValueError(f"unroll must be a cell (t, s), 0-indexed, got {cell!r:.40}")
    t, s = cell
    rnn, readout, x, y, _ = model_and_sequence(cfg, upload)
    terms = dict(readout=readout, y=y) if t == P.contribution_step(t + 1) else {}  # as the page asks
    u = unroll(rnn, x, t, s, block=flow_block(cfg.cell, block), norm=norm_of(norm), **terms)
    return (f"Click to unroll: ∂h({u.t + 1})/∂h({u.s + 1})", _section(P.unroll_panels(u), lecture))


# -- the training player's chosen frame ------------------------------------------------------------


PLAYER_SOURCES = ("run", "unclipped", "norm", "value")  # a page's own run (training.train), or a Clipping twin


def _check_player(player) -> dict:
    from .training import TrainConfig

    if not isinstance(player, dict) or not isinstance(player.get("train_cfg"), TrainConfig):
        raise ValueError(f"player must be a dict with a TrainConfig under 'train_cfg', got {player!r:.80}")
    if player.get("source", "run") not in PLAYER_SOURCES:
        raise ValueError(f"player['source'] must be one of {', '.join(PLAYER_SOURCES)}, got {player['source']!r:.40}")
    return player


def player_cost_of(cfg: ModelConfig, player: dict):
    """What :func:`player_section_of` costs: the run's training (a twin's is counted with the Clipping
    section) and its frames."""
    from .cost import played_training_cost, player_cost

    player = _check_player(player)
    tcfg = player["train_cfg"]
    if player.get("source", "run") == "run":
        return played_training_cost(cfg, tcfg)
    return player_cost(cfg, 2 * tcfg.snapshots + 1)


def player_section_of(cfg: ModelConfig, player: dict, upload=None, lecture: bool = False, twins=None):
    """("Play training: …", figures): the training player's five animated figures, opened at the kept
    snapshot nearest to ``player["step"]`` (the page's chosen frame; Play and the slider still work in
    the report). ``player``: {"train_cfg": TrainConfig, "source": "run" (train one run) or a Clipping
    twin's name, "step": training step, "label": the run's name, "prefix": the figures' keys};
    ``twins``: the Clipping twins already trained with that TrainConfig (else they are trained here)."""
    from .player import frame_at, frames
    from .training import train, twin_runs

    player = _check_player(player)
    tcfg, source = player["train_cfg"], player.get("source", "run")
    initial = None
    if upload is not None:
        from .sources import training_start

        initial = training_start(cfg, upload)[0]
    if source == "run":
        run = train(cfg, tcfg, initial=initial)
    else:
        run = (twins or twin_runs(cfg, tcfg, initial=initial))[source]
    fr = frames(run)
    label = str(player.get("label") or source)
    if not fr:
        return (f"Play training: {label}", [])
    i = frame_at([f.step for f in fr], int(player.get("step", 0)))
    panels = P.player_panels(fr, label, str(player.get("prefix", "play")), i)
    return (f"Play training: {label}, training step {fr[i].step}", _section(panels, lecture))


def _render(cfg: ModelConfig, sections, tables, notes, extra: dict) -> str:
    parts = []
    first = True
    for name, figs in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        for title, fig, caption in figs:
            assert isinstance(fig, go.Figure), title
            fig_html = fig.to_html(full_html=False, include_plotlyjs=first, config=F.PLOTLY_CONFIG)
            first = False
            parts.append(f"<figure>{fig_html}<figcaption>{html.escape(caption)}</figcaption></figure>")
    for title, df in tables:
        parts.append(
            f"<h3>{html.escape(title)}</h3>" + df.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}")
        )
    settings = json.dumps({**cfg.to_dict(), **extra}, indent=2)
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>BPTT Explorer report</title>
<style>
body {{ font-family: {F.FONT}; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.45; }}
figure {{ margin: 1.5em 0; }} figcaption {{ color: #555; font-size: 0.95em; }}
pre {{ background: #f6f6f6; padding: 1em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; }}
</style></head><body>
<h1>BPTT Explorer report</h1>
<p>Every number below was computed for these settings by <code>bptt_core</code> (torch {torch.__version__}).</p>
<pre>{html.escape(settings)}</pre>
{"<ul>" + note_html + "</ul>" if note_html else ""}
{"".join(parts)}
</body></html>
"""


# -- compare mode: the report's A/B section -------------------------------------------------------------------


def model_b_of(cfg_b: ModelConfig, upload_b=None) -> ModelConfig:
    """Compare mode's model B as the report analyses it (an upload's architecture applied); ValueError
    naming B for a combination that cannot be analysed."""
    if not isinstance(cfg_b, ModelConfig):
        raise ValueError(f"compare_cfg must be a ModelConfig, got {type(cfg_b).__name__}")
    if upload_b is not None:
        from .sources import effective_config

        cfg_b = effective_config(cfg_b, upload_b)
    errors = problems(cfg_b)[0]
    if errors:
        raise ValueError("model B: " + "; ".join(errors))
    return cfg_b


def report_total_cost(cfg: ModelConfig, norm="fro", k1k2=None, train_cfg=None, cfg_b: ModelConfig | None = None):
    """The report's cost (:func:`bptt_core.cost.report_cost`) plus, with a model B, B's own analyses and
    A's gradient-flow matrix once more (the compare section recomputes it)."""
    from .cost import flow_cost, report_cost

    c = report_cost(cfg, norm, k1k2, train_cfg)
    if cfg_b is not None:
        c = c + report_cost(cfg_b, norm, None, train_cfg) + flow_cost(cfg, norm)
    return c


def _twins(runs) -> dict:
    return {k: dict(history=r.history, diverged_at=r.diverged_at, first_clip=r.first_clip) for k, r in runs.items()}


def compare_sections_of(cfg, upload, cfg_b, upload_b, norm, block, threshold, k1k2, train_cfg, runs_a, lecture):
    """(figures, tables) of the report's compare section: the pages' A/B figures and A, B, B − A tables."""
    blocks = flow_block(cfg.cell, block), flow_block(cfg_b.cell, block)
    L_a, L_b = flow_matrix_of(cfg, norm, blocks[0], upload), flow_matrix_of(cfg_b, norm, blocks[1], upload_b)
    spec_a, spec_b = spectrum_of(cfg, upload), spectrum_of(cfg_b, upload_b)
    summaries = P.flow_summary(L_a, spec_a, cfg.cell, threshold), P.flow_summary(L_b, spec_b, cfg_b.cell, threshold)
    table, panels = P.compare_flow_panels(L_a, L_b, summaries, norm, blocks)
    tables = [("Compare, gradient flow: A, B and B − A", table)]
    lam_a, lam_b = lyapunov_of(cfg, upload=upload), lyapunov_of(cfg_b, upload=upload_b)
    table, more = P.compare_spectrum_panels(spec_a, lam_a, spec_b, lam_b)
    panels += more
    tables.append(("Compare, spectrum: A, B and B − A", table))
    if k1k2 is not None:
        L_af = L_a if norm_of(norm) == "fro" and blocks[0] == "h" else flow_matrix_of(cfg, "fro", "h", upload)
        L_bf = L_b if norm_of(norm) == "fro" and blocks[1] == "h" else flow_matrix_of(cfg_b, "fro", "h", upload_b)
        table, more = P.compare_truncation_panels(L_af, L_bf, *k1k2)
        panels += more
        tables.append((f"Compare, TBPTT{tuple(k1k2)}: A, B and B − A", table))
    if train_cfg is not None:
        from .training import twin_runs

        initial = None
        if upload_b is not None:
            from .sources import training_start

            initial = training_start(cfg_b, upload_b)[0]
        runs_b = _twins(twin_runs(cfg_b, train_cfg, initial=initial))
        runs_a = _twins(runs_a)
        for twin in runs_a:
            table, more = P.compare_clipping_panels(runs_a, runs_b, twin)
            panels += more
        tables.append(("Compare, clipping twins: A, B and B − A", table))
    return _section(panels, lecture), tables
