"""What each dashboard page computes, from plain settings, and the self-contained HTML report.

The dashboard calls the ``*_of`` functions below through ``st.cache_data`` (every argument is a frozen
:class:`ModelConfig`, an upload or a plain value, so they hash) and hands the numbers to
:mod:`bptt_core.report.panels`; :func:`build_report` calls the same functions and the same panel builders, so
the report shows exactly what the pages show.
"""

from __future__ import annotations

import html
import json

import pandas as pd
import plotly.graph_objects as go
import torch

from bptt_core.analyses.cost import Cost, report_total_cost
from bptt_core.analyses.numbers import (
    DEFAULT_K,
    calculator_estimate_of,
    check_player,
    comparison_of,
    contributions_of,
    flow_matrix_of,
    loss_gradients_of,
    lyapunov_of,
    model_b_of,
    player_cost_of,
    problems,
    spectrum_of,
    spectrum_rate_of,
    unroll_of,
)
from bptt_core.analyses.sources import effective_config, input_notes, training_start
from bptt_core.config import Block, ModelConfig, Norm
from bptt_core.figures.style import FONT, PLOTLY_CONFIG, style
from bptt_core.flow.theory import circular_law_radius
from bptt_core.learning.player import frame_at, frames
from bptt_core.learning.training import CLIPPING_STORY, TrainConfig, train, twin_runs
from bptt_core.learning.truncation import contribution_step
from bptt_core.resources import check_fits

from . import panels as P

# -- checking a configuration ---------------------------------------------------------------------


# -- the computations ------------------------------------------------------------------------------


# -- the report ------------------------------------------------------------------------------------


def flow_view_of(cfg: ModelConfig, norm="fro", block: str = "h", threshold: float = 1e-3, upload=None):
    """The Gradient flow page's figures for these settings (computed here, assembled by bptt_core.report.panels)."""
    L = flow_matrix_of(cfg, norm, block, upload)
    t = contribution_step(L.shape[0])
    return P.gradient_flow_figures(
        cfg.cell, L, spectrum_of(cfg, upload), loss_gradients_of(cfg, upload), contributions_of(cfg, t, upload),
        norm=norm, block=Block.shown(cfg.cell, block), threshold=threshold,
    )  # fmt: skip


def spectrum_panels_of(cfg: ModelConfig, upload=None) -> list[P.Panel]:
    """The Spectrum page's figures for these settings."""

    return P.spectrum_figures(
        spectrum_of(cfg, upload), lyapunov_of(cfg, upload=upload), spectrum_rate_of(cfg, upload),
        circular_law_radius(cfg, upload is not None), cfg.cell,
    )  # fmt: skip


def calculator_of(cfg: ModelConfig, settings: dict, upload=None) -> tuple[pd.DataFrame, P.Panel]:
    """The Calculator page's table and memory figure for the model ``cfg`` (or the ``upload``) and
    the page's ``settings`` (:func:`calculator_estimate_of`)."""
    e = calculator_estimate_of(cfg, settings, upload)
    s = e.settings
    panel = P.activation_memory_figure(
        cfg, s["input_size"], s["output_size"], s["batch_size"], s["num_layers"], s["truncation"] or 0
    )
    return e.table(), panel


def every_page_sections(cfg: ModelConfig, k1k2=None, train_cfg=None) -> tuple[tuple[int, int], TrainConfig]:
    """(k1k2, train_cfg) of a report of every page: the Truncated BPTT and Clipping pages' defaults where
    not given, k capped at T."""
    k = min(DEFAULT_K, cfg.seq_len)
    return tuple(min(int(v), cfg.seq_len) for v in k1k2 or (k, k)), train_cfg or CLIPPING_STORY


def report_cost_of(
    cfg: ModelConfig, norm="fro", k1k2=None, train_cfg=None, player=None, every_page: bool = False, upload=None,
    compare_cfg: ModelConfig | None = None, compare_upload=None, **view,
) -> Cost:  # fmt: skip
    """What :func:`build_report` costs with the same arguments (``view``: the ones that change no cost),
    known before anything is computed."""
    if upload is not None:
        cfg = effective_config(cfg, upload)
    if every_page:
        k1k2, train_cfg = every_page_sections(cfg, k1k2, train_cfg)
    cfg_b = None if compare_cfg is None else model_b_of(compare_cfg, compare_upload)
    kk = None if k1k2 is None else tuple(min(int(k), cfg.seq_len) for k in k1k2)
    cost = report_total_cost(cfg, norm, kk, train_cfg, cfg_b)
    if player is not None:
        cost = cost + player_cost_of(cfg, player)
    return cost


def _section(panels: list[P.Panel], lecture: bool) -> list:
    return [(p.title, style(p.figure, lecture), p.caption) for p in panels]


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
    compare_cfg: ModelConfig | None = None,
    compare_upload=None,
) -> str:
    """One self-contained HTML page (plotly.js inlined once) with every figure for these settings.

    ``k1k2``: add the truncated-BPTT heatmap and the measured comparison. ``train_cfg``: add the
    clipping twin runs (a :class:`bptt_core.learning.training.TrainConfig`; this trains three models from the
    settings, not from an upload). ``calculator``: add the calculator's table and memory figure
    (the Calculator page's settings, :data:`CALCULATOR_DEFAULTS`: batch_size, num_layers, input_size,
    output_size, truncation, optimizer, checkpointing, dataset_size, lr, measure_time). ``every_page``: every page's section, each page's own settings taken from
    the arguments given and the page's defaults otherwise (what the dashboard's report button builds).
    ``upload``: a :class:`bptt_core.analyses.sources.Upload` to report on instead.
    ``compare_cfg``: compare mode's model B (``compare_upload``: B is that upload, with compare_cfg's
    settings for the rest): adds B's settings, the A/B figures (one colour range, the log10 ratio, the
    spectra in one plane) and the metrics as A, B and B − A of every page included.
    Before any work, a report whose estimated peak memory (:func:`report_cost_of`) does not fit this
    machine raises :class:`bptt_core.resources.DoesNotFit` (a ValueError saying how much it needs).
    ``player``: add a page's training player opened at its chosen frame (:func:`player_section_of`).
    ``unroll``: (t, s), 0-indexed: add that cell's chain (the Gradient flow page's open cell,
    :func:`unroll_section_of`, in ``norm`` and ``block``).
    """
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")
    upload_notes = []
    if upload is not None:
        upload_notes = input_notes(cfg, upload)
        cfg = effective_config(cfg, upload)
    errors, notes = problems(cfg)
    notes = upload_notes + notes
    if errors:
        raise ValueError("; ".join(errors))
    cost = report_cost_of(cfg, norm, k1k2, train_cfg, player, every_page, None, compare_cfg, compare_upload)
    check_fits(cost.bytes, cost.what)
    if every_page:
        k1k2, train_cfg = every_page_sections(cfg, k1k2, train_cfg)
        calculator = calculator or {}
    cfg_b = None if compare_cfg is None else model_b_of(compare_cfg, compare_upload)
    sections: list[tuple[str, list]] = [
        ("Gradient flow", _section(flow_view_of(cfg, norm, block, threshold, upload).panels, lecture)),
    ]
    if unroll is not None:
        sections.append(unroll_section_of(cfg, unroll, norm, block, upload, lecture))
    sections.append(("Spectrum", _section(spectrum_panels_of(cfg, upload), lecture)))
    tables: list[tuple[str, pd.DataFrame]] = []
    if k1k2 is not None:
        k1, k2 = (min(int(k), cfg.seq_len) for k in k1k2)
        view = P.truncation_figure(flow_matrix_of(cfg, norm, block, upload), k1, k2, norm, Block.shown(cfg.cell, block))
        df = comparison_of(cfg, k1, k2, upload=upload)
        sections.append(("Truncated BPTT", _section([view.panel, P.comparison_panel(df)], lecture)))
        tables.append(("Full BPTT vs TBPTT vs RTRL (measured)", df))
    if train_cfg is not None:
        initial = None
        if upload is not None:
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
    extra = dict(norm=Norm.of(norm).value, block=Block.of(block).value, threshold=threshold)
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
    gradient-flow matrix (:func:`bptt_core.flow.unroll.unroll`, the page's panels); ValueError for a cell outside
    the sequence or a model the unroll cannot read."""

    if not (isinstance(cell, tuple | list) and len(cell) == 2):
        raise ValueError(f"unroll must be a cell (t, s), 0-indexed, got {cell!r:.40}")
    u = unroll_of(cfg, *cell, norm, block, upload)
    return (f"Click to unroll: ∂h({u.t + 1})/∂h({u.s + 1})", _section(P.unroll_panels(u), lecture))


# -- the training player's chosen frame ------------------------------------------------------------


def player_section_of(cfg: ModelConfig, player: dict, upload=None, lecture: bool = False, twins=None):
    """("Play training: …", figures): the training player's five animated figures, opened at the kept
    snapshot nearest to ``player["step"]`` (the page's chosen frame; Play and the slider still work in
    the report). ``player``: {"train_cfg": TrainConfig, "source": "run" (train one run) or a Clipping
    twin's name, "step": training step, "label": the run's name, "prefix": the figures' keys};
    ``twins``: the Clipping twins already trained with that TrainConfig (else they are trained here)."""

    player = check_player(player)
    tcfg, source = player["train_cfg"], player.get("source", "run")
    initial = None
    if upload is not None:
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
            fig_html = fig.to_html(full_html=False, include_plotlyjs=first, config=PLOTLY_CONFIG)
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
body {{ font-family: {FONT}; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.45; }}
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


def _twins(runs) -> dict:
    return {k: dict(history=r.history, diverged_at=r.diverged_at, first_clip=r.first_clip) for k, r in runs.items()}


def compare_sections_of(cfg, upload, cfg_b, upload_b, norm, block, threshold, k1k2, train_cfg, runs_a, lecture):
    """(figures, tables) of the report's compare section: the pages' A/B figures and A, B, B − A tables."""
    blocks = Block.shown(cfg.cell, block), Block.shown(cfg_b.cell, block)
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
        L_af = L_a if Norm.of(norm) is Norm.FRO and blocks[0] is Block.H else flow_matrix_of(cfg, "fro", "h", upload)
        L_bf = (
            L_b if Norm.of(norm) is Norm.FRO and blocks[1] is Block.H else flow_matrix_of(cfg_b, "fro", "h", upload_b)
        )
        table, more = P.compare_truncation_panels(L_af, L_bf, *k1k2)
        panels += more
        tables.append((f"Compare, TBPTT{tuple(k1k2)}: A, B and B − A", table))
    if train_cfg is not None:
        initial = None
        if upload_b is not None:
            initial = training_start(cfg_b, upload_b)[0]
        runs_b = _twins(twin_runs(cfg_b, train_cfg, initial=initial))
        runs_a = _twins(runs_a)
        for twin in runs_a:
            table, more = P.compare_clipping_panels(runs_a, runs_b, twin)
            panels += more
        tables.append(("Compare, clipping twins: A, B and B − A", table))
    return _section(panels, lecture), tables
