"""Every computation a page asks for: torch set up for serving, the server-wide compute slots, and the
cached analyses, each keyed by the page's :class:`PageContext` and plain values.

Two levels of cache:

- the numbers (``flow_matrix``, ``spectrum``, …): ``st.cache_data`` around ``bptt_core.report``'s
  ``*_of`` functions, each inside a compute slot; :data:`COMPUTED` counts the real computations (a
  cache miss), which is how the tests see that a view-only control recomputes nothing;
- the figures ready to draw (``*_view``): the page's panels from ``bptt_core.report.panels``, styled and
  turned into plain dicts once per settings, so that a rerun that changes nothing about a figure
  neither rebuilds nor revalidates it (Plotly's validation of a heatmap costs more than drawing it).
  These are ``st.cache_resource``: every rerun gets the one stored object, where ``st.cache_data``
  unpickled a fresh copy of every figure and table at every rerun (a quarter of the Truncated BPTT
  page's rerun, replayed without a browser: 30 -> 23 ms). So a view is read-only: the pages and
  :mod:`dashboard.layout` only read it (slide mode builds a new dict), and tests/dashboard/test_compute.py checks
  that what a page sends does not drift between reruns.

torch is imported on first use (:func:`numerics`): the Overview page and the sidebar never compute, so
the first page a visitor opens does not wait for it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from bptt_core.config import Block, ModelConfig, Norm

if TYPE_CHECKING:
    import pandas as pd

    from bptt_core.analyses.sources import Upload


@dataclass(frozen=True)
class PageContext:
    """What a page analyses: the model settings (with an upload's architecture applied) and the
    upload, or None for the settings model. Frozen and small: every cached function takes it."""

    cfg: ModelConfig
    upload: Upload | None = None


# -- the numerics, imported on first use ----------------------------------------------------------


@functools.cache
def numerics():
    """bptt_core.analyses.numbers (and torch), set up for serving: one thread per computation, because the
    server runs sessions in threads on a small machine and torch's own thread pool fighting them made
    the small matmuls here 10-100x slower; the loaded libraries frozen out of the garbage collector's
    full passes (dashboard.allocator)."""
    import torch

    from bptt_core.analyses import numbers
    from dashboard.allocator import freeze_new_imports

    torch.set_num_threads(1)
    freeze_new_imports()  # torch and the library are loaded now: full collections need not scan them again
    return numbers


# At most one computation per core at a time, server-wide: more would not finish sooner on a small machine,
# but each would hold its step Jacobians and products at once, so a lecture hall that clicks together
# would set the server's memory by how many clicked (bench/bench_load.py). These are the job runner's
# light slots: heavy work runs in its background workers instead and never holds one, so a visitor at the
# defaults is not kept waiting by heavy tabs (dashboard.jobs, dashboard/jobs_ui.py).
def _runner():
    from dashboard.jobs import default_runner

    return default_runner()


_SLOTS = _runner()._light


def compute_slot():
    """Wait for a free light slot, then compute (a nested call in the same thread takes no second slot)."""
    return _runner().light_slot()


def forget_idle_cache_locks() -> int | None:
    """Drop the per-key locks st.cache_data and st.cache_resource keep after a value is computed; how
    many are left (None where this Streamlit keeps them elsewhere).

    Streamlit (1.67, ``cache_utils.Cache._value_locks``) makes one lock per key it ever computed so
    two sessions never compute the same value at once, and keeps it for good: under a class that keeps
    changing settings, a few hundred bytes per new setting, forever. A lock nobody holds guards nothing
    (dropping one at the wrong instant costs at most one duplicate computation), so every rerun drops
    them. A Streamlit release that stores them differently fails tests/dashboard/test_compute.py.
    """
    from streamlit.runtime.caching import cache_data_api, cache_resource_api

    try:
        caches = []
        for registry in (cache_data_api._data_caches, cache_resource_api._resource_caches):
            with registry._caches_lock:
                caches += [c for by_key in registry._function_caches.values() for c in by_key.values()]
        left = 0
        for cache in caches:
            with cache._value_locks_lock:
                locks = cache._value_locks
                for key in [k for k, lock in locks.items() if not lock.locked()]:
                    del locks[key]
                left += len(locks)
        return left
    except AttributeError:  # another Streamlit's internals: leave them be (the page must not break)
        return None


# -- the numbers ------------------------------------------------------------------------------------


def _context_key(ctx: PageContext) -> tuple:
    return astuple(ctx.cfg), None if ctx.upload is None else astuple(ctx.upload)


# The settings are frozen dataclasses of plain values: hashed as tuples of them. Streamlit's own hasher
# walks a dataclass through __reduce__, ~10 ms a call here, paid on every rerun by every cached call.
HASH_FUNCS = {
    PageContext: _context_key,
    ModelConfig: astuple,
    "bptt_core.learning.training.TrainConfig": astuple,
    "dashboard.compute.Result": lambda r: r.key,  # a result is known by its key, never hashed whole
}
CACHE = dict(max_entries=32, show_spinner=False, hash_funcs=HASH_FUNCS)
VIEWS = dict(max_entries=16, show_spinner=False, hash_funcs=HASH_FUNCS)
COMPUTED: Counter = Counter()  # name -> real computations (cache misses) in this process


def _computing(name: str):
    COMPUTED[name] += 1
    return compute_slot()


def problems(cfg: ModelConfig) -> tuple[list[str], list[str]]:
    """(errors, notes) about a combination of settings (bptt_core.analyses.numbers.problems)."""
    return numerics().problems(cfg)


# -- the analyses a page asks for: once, getting the result or a job running (dashboard/jobs_ui.ask) -------


@dataclass(frozen=True)
class Analysis:
    """One analysis a page asks for by name: how it runs and what it costs, known before it starts.

    Its results are kept under the key ``(name, ctx, *args)`` (:func:`key_of`), light ones computed in the
    rerun and heavy ones by a background job (dashboard/jobs_ui.py decides, by dashboard/budget.py)."""

    name: str  # the key's first item
    what: str  # its name in words, for the progress bar and the budget's refusal
    run: Callable  # run(ctx, *args, progress, cancelled) -> value: library calls only (it may run in a worker)
    cost: Callable  # cost(ctx, *args) -> bptt_core.analyses.cost.Cost
    args: Callable = lambda ctx, *args: args  # the arguments normalised once, before they enter the key


@dataclass(frozen=True)
class Result:
    """An analysis's value as a page holds it, known by its key: the views that draw it are cached on
    the key, so a rerun that asks again gets the same figures without hashing the value."""

    key: tuple
    value: object = field(compare=False)


def key_of(analysis: Analysis, ctx: PageContext, *args) -> tuple:
    return (analysis.name, ctx, *analysis.args(ctx, *args))


def result_now(analysis: Analysis, ctx: PageContext, *args) -> Result:
    """The result, computed here (in a light slot) if no page has asked for it yet: for the presets'
    claims and the report, which measure the numbers the pages show without a budget of their own."""
    key = key_of(analysis, ctx, *args)
    runner = _runner()
    done = runner.result(key)
    if done is None:
        with compute_slot():
            done = analysis.run(ctx, *key[2:], progress=lambda f, m: None, cancelled=lambda: False)
        runner.put(key, done)
    return Result(key, done)


def _cost():
    from bptt_core.analyses import cost

    return cost


def _flow_matrix(ctx: PageContext, norm: Norm, block: Block, progress, cancelled):
    progress(0.0, "multiplying step Jacobians")  # the engine's own checkpoints report the rest
    COMPUTED["flow_matrix"] += 1
    return numerics().flow_matrix_of(ctx.cfg, norm, block, ctx.upload)


def _twin_runs(ctx: PageContext, tcfg, progress, cancelled) -> dict:
    """The three clipping twins' histories as plain data, and each TrainResult (its weight snapshots,
    bounded by bptt_core.learning.training.MAX_SNAPSHOT_BYTES) for the training player."""
    numerics()
    from bptt_core.analyses import sources
    from bptt_core.learning.training import twin_runs

    COMPUTED["twin_runs"] += 1
    initial = None if ctx.upload is None else sources.training_start(ctx.cfg, ctx.upload)[0]
    out = twin_runs(ctx.cfg, tcfg, progress=progress, initial=initial, cancel=cancelled)
    return {
        k: dict(history=r.history, dh=r.dh_norms, diverged_at=r.diverged_at, first_clip=r.first_clip,
                loss_on=r.loss_on, seconds=r.seconds, run=r)  # run: its weight snapshots, for the player
        for k, r in out.items()
    }  # fmt: skip


def _comparison(ctx: PageContext, k1: int, k2: int, progress, cancelled):
    COMPUTED["comparison"] += 1
    return numerics().comparison_of(ctx.cfg, k1, k2, upload=ctx.upload)


def _played_run(ctx: PageContext, tcfg, progress, cancelled) -> dict:
    """Train one run (bptt_core.learning.training.train) and measure its snapshots (bptt_core.learning.player):
    the first half of the progress is the training, the second the frames."""
    numerics()
    from bptt_core.analyses import sources
    from bptt_core.learning import player
    from bptt_core.learning.training import train

    COMPUTED["played_run"] += 1
    initial = None if ctx.upload is None else sources.training_start(ctx.cfg, ctx.upload)[0]
    r = train(ctx.cfg, tcfg, progress=lambda f, m: progress(0.5 * f, f"training: {m}"), cancel=cancelled,
              initial=initial)  # fmt: skip
    frames = player.frames(r, progress=lambda f, m: progress(0.5 + 0.5 * f, m)) if r.snapshots else []
    return dict(run=r, frames=frames)


# Every page that asks for the same analysis with the same settings shares one result (and one job).
FLOW = Analysis(
    "flow_matrix", "The gradient-flow matrix", _flow_matrix,
    cost=lambda ctx, norm, block: _cost().flow_cost(ctx.cfg, norm),
    args=lambda ctx, norm, block: (Norm.of(norm), Block.shown(ctx.cfg.cell, block)),
)  # fmt: skip
TWINS = Analysis(
    "twin_runs", "Training the three twins", _twin_runs, lambda ctx, tcfg: _cost().twins_cost(ctx.cfg, tcfg)
)
COMPARISON = Analysis(
    "comparison", "The comparison", _comparison, lambda ctx, k1, k2: _cost().comparison_cost(ctx.cfg, k1, k2)
)
PLAYED_RUN = Analysis(
    "played_run", "Training the played run", _played_run,
    lambda ctx, tcfg: _cost().played_training_cost(ctx.cfg, tcfg),
)  # fmt: skip


@st.cache_data(**CACHE)
def spectrum(ctx: PageContext):
    with _computing("spectrum"):
        return numerics().spectrum_of(ctx.cfg, ctx.upload)


@st.cache_data(**CACHE)
def lyapunov(ctx: PageContext):
    with _computing("lyapunov"):
        return numerics().lyapunov_of(ctx.cfg, upload=ctx.upload)


@st.cache_data(**CACHE)
def loss_gradients(ctx: PageContext):
    with _computing("loss_gradients"):
        return numerics().loss_gradients_of(ctx.cfg, ctx.upload)


@st.cache_data(**CACHE)
def contributions(ctx: PageContext, t: int):
    with _computing("contributions"):
        return numerics().contributions_of(ctx.cfg, t, ctx.upload)


@st.cache_resource(**VIEWS)
def depth_view(ctx: PageContext, norm: Norm, lecture: bool) -> Shown:
    """A stack's depth x time picture: how much of a change at (layer i, step s) reaches the top at T."""
    from bptt_core.report import panels as P

    with _computing("layer_reach"):
        reach = numerics().layer_reach_of(ctx.cfg, norm, ctx.upload)
    return ready(P.depth_panel(reach), lecture)


@st.cache_data(max_entries=8, show_spinner="Sensitivity to λ…")
def sensitivity_view(seq_len: int, seed: int, lecture: bool) -> Shown:
    """Zucchet & Orvieto's measured curve, small enough for a page (16 sequences, 4 units)."""
    from bptt_core.flow.sensitivity import lambda_sensitivity
    from bptt_core.report import panels as P

    with _computing("lambda_sensitivity"):
        sens = lambda_sensitivity(seq_len=max(2, seq_len), hidden_size=4, n_sequences=16, seed=seed)
    return ready(P.sensitivity_panel(sens), lecture)


@st.cache_data(max_entries=16, show_spinner=False)
def preset_checks(key: str) -> list[tuple[str, str, bool]]:
    """(claim, measured value, holds) for every claim of preset ``key``, on the preset's own settings,
    measured on the numbers the pages themselves compute and keep (nothing computed twice)."""
    from dashboard import presets as P

    def flow(cfg, norm="fro", block="h"):  # the pages' own matrices
        return result_now(FLOW, PageContext(cfg), norm, block).value

    def twins(cfg, tcfg):  # the Clipping page's own twins
        runs = result_now(TWINS, PageContext(cfg), tcfg).value
        return {k: (r["first_clip"], r["diverged_at"]) for k, r in runs.items()}

    return [(c.claim.text, c.value_text(), c.holds) for c in P.get(key).check(flow=flow, twins=twins)]


@st.cache_resource(**{**VIEWS, "show_spinner": "Measuring…"})
def calculator_view(ctx: PageContext, **settings) -> tuple[pd.DataFrame, bytes, dict]:
    """(the calculator's table as the page shows it, the CSV of the numbers, what it analysed:
    input_size, output_size, num_layers, truncation, same_as_flow) for the page's model or upload and
    the page's ``settings`` (bptt_core.analyses.numbers.calculator_estimate_of: the Gradient flow page's own
    module and input where the depth and input width are that page's)."""
    from bptt_core.report import panels as P

    with _computing("estimate"):
        e = numerics().calculator_estimate_of(ctx.cfg, settings, ctx.upload)
    table = e.table()
    used = {k: e.settings[k] for k in ("input_size", "output_size", "num_layers", "truncation", "same_as_flow")}
    return P.calculator_table(table), table.to_csv(index=False).encode(), used


# -- figures ready to draw ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A panel ready for the page: its figure styled and as a plain dict (validated once, when it was
    built), with the CSV numbers and the explanation."""

    key: str
    spec: dict
    data: pd.DataFrame
    csv_name: str
    explain: str


def ready(panel, lecture: bool, height: int | None = None) -> Shown:
    """A bptt_core.report.panels.Panel styled for the page (the projector scale in lecture mode)."""
    from bptt_core.figures.style import style

    fig = panel.figure
    h = height or fig.layout.height or 450  # Plotly's own default
    style(fig, lecture=lecture, height=int(h * (1.4 if lecture else 1)))
    return Shown(panel.key, plain_arrays(fig.to_dict()), panel.data, panel.csv_name, panel.explain)


def plain_arrays(spec):
    """The figure dict with its numpy object arrays (hover text) as lists: Plotly's to_json, run on
    every rerun, walks an object array entry by entry (~8 ms for a 50 x 50 heatmap's hover text) but
    hands a list to the JSON encoder whole (0.3 ms). The figure was validated, from the arrays, once."""
    import numpy as np

    if isinstance(spec, dict):
        return {k: plain_arrays(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [plain_arrays(v) for v in spec]
    if isinstance(spec, np.ndarray) and spec.dtype == object:
        return spec.tolist()
    return spec


@dataclass(frozen=True)
class FlowShown:
    summary: object  # bptt_core.flow.summary.FlowSummary
    panels: tuple[Shown, ...] = field(default_factory=tuple)


@st.cache_resource(**VIEWS)
def gradient_flow_view(
    ctx: PageContext,
    L: Result,
    norm: Norm,
    block: Block,
    lag: bool,
    threshold: float,
    compare: tuple[str, Result] | None,
    lecture: bool,
    centre: str = "identity",
) -> FlowShown:
    """The Gradient flow page's figures for its matrix ``L`` (:data:`FLOW`). ``compare``: compare mode's
    model B, (its name, its matrix), whose lag profile is drawn beside A's, or None."""
    from bptt_core.figures.heatmaps import clickable_cells
    from bptt_core.flow.summary import lag_profile
    from bptt_core.learning.truncation import contribution_step
    from bptt_core.report import panels as P

    t = contribution_step(L.value.shape[0])
    others = {} if compare is None else {f"B: {compare[0]}": lag_profile(compare[1].value)}
    view = P.gradient_flow_figures(
        ctx.cfg.cell, L.value, spectrum(ctx), loss_gradients(ctx), contributions(ctx, t),
        norm=norm, lag=lag, block=block, threshold=threshold, compare=others, centre=centre,
    )  # fmt: skip
    clickable_cells(view.panels[0].figure)  # the heatmap: a click in the browser opens that cell's chain
    return FlowShown(view.summary, tuple(ready(p, lecture) for p in view.panels))


PLAYER_CELLS = ("rnn", "lstm", "gru")  # the cells the training player measures (one layer)


def classic_one_layer(cfg: ModelConfig) -> bool:
    return cfg.cell in PLAYER_CELLS and cfg.num_layers == 1


@st.cache_resource(**VIEWS)
def unroll_view(
    ctx: PageContext, t: int, s: int, norm: Norm, block: Block, lecture: bool
) -> tuple[float, tuple[Shown, ...]]:
    """(log10 of the clicked norm, the unroll panels) for the 0-indexed cell (t, s) of the page's
    gradient-flow matrix: the same model and sequence as :data:`FLOW`."""
    from bptt_core.report import panels as P

    with _computing("unroll"):
        u = numerics().unroll_of(ctx.cfg, t, s, norm, block, ctx.upload)
    return u.value, tuple(ready(p, lecture) for p in P.unroll_panels(u))


@st.cache_resource(**VIEWS)
def compare_view(
    ctx: PageContext, ctx_b: PageContext, L_a: Result, L_b: Result, norm: Norm, threshold: float, lecture: bool
) -> tuple[pd.DataFrame, tuple[Shown, ...]]:
    """Compare mode on the Gradient flow page: (metrics A, B, B − A; A's and B's heatmaps on one colour
    range and the log10 ratio B / A), from both sides' matrices (:data:`FLOW`)."""
    from bptt_core.report import panels as P

    blocks = L_a.key[3], L_b.key[3]  # each side's block, as FLOW's key holds it
    sa = P.flow_summary(L_a.value, spectrum(ctx), ctx.cfg.cell, threshold)
    sb = P.flow_summary(L_b.value, spectrum(ctx_b), ctx_b.cfg.cell, threshold)
    table, panels = P.compare_flow_panels(L_a.value, L_b.value, (sa, sb), norm, blocks)
    return table, tuple(ready(p, lecture) for p in panels)


@st.cache_resource(**{**VIEWS, "show_spinner": "Spectra…"})
def spectrum_view(
    ctx: PageContext, L: Result | None, lecture: bool
) -> tuple[object, object, float | None, tuple[Shown, ...]]:
    """(spectrum, Lyapunov exponents, the decay rate of the Gradient flow page's matrix ``L`` or None where
    the page has none to hand, the Spectrum page's figures)."""
    from bptt_core.flow.summary import decay_rate
    from bptt_core.flow.theory import circular_law_radius
    from bptt_core.report import panels as P

    spec, lam = spectrum(ctx), lyapunov(ctx)
    rate = None if L is None else decay_rate(L.value)
    circle = circular_law_radius(ctx.cfg, ctx.upload is not None)
    return spec, lam, rate, tuple(ready(p, lecture) for p in P.spectrum_figures(spec, lam, rate, circle, ctx.cfg.cell))


@st.cache_resource(**VIEWS)
def truncation_view(L: Result, k1: int, k2: int, lecture: bool):
    """(bptt_core.report.panels.TruncationView without its panel, the mask heatmap ready to draw) for the
    Frobenius h-block matrix ``L``."""
    from dataclasses import replace

    from bptt_core.report import panels as P

    view = P.truncation_figure(L.value, k1, k2)
    return replace(view, panel=None), ready(view.panel, lecture)


@st.cache_resource(**VIEWS)
def comparison_view(df: Result, lecture: bool) -> tuple[pd.DataFrame, Shown]:
    """(the static table, the comparison figure) of full BPTT vs TBPTT(k1, k2) vs RTRL (:data:`COMPARISON`)."""
    from bptt_core.report import panels as P

    return P.comparison_table(df.value), ready(P.comparison_panel(df.value), lecture)


@st.cache_resource(**VIEWS)
def clipping_view(runs: Result, tcfg, lecture: bool) -> tuple[Shown, ...]:
    """The Clipping page's gradient-norm and loss histories of the twins (:data:`TWINS`)."""
    from bptt_core.report import panels as P

    hist = {k: r["history"] for k, r in runs.value.items()}
    div = {k: r["diverged_at"] for k, r in runs.value.items()}
    panels = P.clipping_figures(hist, div, tcfg.clip_threshold, runs.value["unclipped"]["loss_on"])
    return tuple(ready(p, lecture) for p in panels)


@st.cache_resource(**VIEWS)
def dh_view(runs: Result, twin: str, lecture: bool) -> Shown:
    """||dL/dh_t|| during training of one twin."""
    from bptt_core.report import panels as P

    return ready(P.dh_panel(runs.value[twin]["dh"], twin), lecture)


@st.cache_resource(**VIEWS)
def player_view(
    run: Result, twin: str, lecture: bool, active: int = 0, prefix: str = "cl_play", label: str = ""
) -> tuple[Shown, ...]:
    """The training player's animated figures for one run, opened at frame ``active``: a Clipping twin
    (``run`` the twins, :data:`TWINS`; ``twin`` = unclipped | norm | value) or a page's own played run
    (``run`` a :data:`PLAYED_RUN`, ``twin`` that page's name). ``prefix``: the figures' keys; ``label``:
    the run's name in the words (a twin's label by default)."""
    from bptt_core.figures.training import TWIN_LABELS
    from bptt_core.report import panels as P

    frames = twin_frames(run, twin) if twin in TWIN_LABELS else run.value["frames"]
    label = label or TWIN_LABELS[twin]
    return tuple(ready(p, lecture) for p in P.player_panels(frames, label, prefix, active))


@st.cache_data(**CACHE)
def twin_frames(runs: Result, twin: str) -> list:
    """The player's frames of one Clipping twin (computed once, whichever frame the page opens at)."""
    from bptt_core.learning import player

    with _computing("player_frames"):
        return player.frames(runs.value[twin]["run"])


@st.cache_resource(**VIEWS)
def memory_view(
    cfg: ModelConfig, input_size: int, output_size: int, batch: int, layers: int, trunc: int, lecture: bool
):
    from bptt_core.report import panels as P

    return ready(P.activation_memory_figure(cfg, input_size, output_size, batch, layers, trunc), lecture)


@st.cache_data(max_entries=2, show_spinner=False)
@functools.cache
def diagram_view(lecture: bool) -> str:
    """The Overview's unrolled network, as SVG text."""
    from bptt_core.figures.diagram import unrolled_network_svg

    return unrolled_network_svg(lecture=lecture)


@st.cache_data(max_entries=16, show_spinner=False)
def mean_field(ctx: PageContext) -> dict | None:
    """The mean-field theory's numbers for the page's network, or None where it does not apply."""
    from bptt_core.flow.theory import page_prediction

    return page_prediction(ctx.cfg, ctx.upload is not None)


# -- compare mode: Spectrum, Truncated BPTT, Clipping ---------------------------------------------------


@st.cache_resource(**{**VIEWS, "show_spinner": "Spectra of B…"})
def compare_spectrum_view(
    ctx: PageContext, ctx_b: PageContext, lecture: bool
) -> tuple[pd.DataFrame, tuple[Shown, ...]]:
    """Compare mode on the Spectrum page: (ρ, σ₁, γσ₁, λ₁ as A, B, B − A; eigenvalues in one plane,
    singular values and Lyapunov spectra each on one axis)."""
    from bptt_core.report import panels as P

    table, panels = P.compare_spectrum_panels(spectrum(ctx), lyapunov(ctx), spectrum(ctx_b), lyapunov(ctx_b))
    return table, tuple(ready(p, lecture) for p in panels)


@st.cache_resource(**VIEWS)
def compare_truncation_view(
    L_a: Result, L_b: Result, k1: int, k2: int, lecture: bool
) -> tuple[pd.DataFrame, tuple[Shown, ...]]:
    """Compare mode on the Truncated BPTT page: (updates, dropped fraction, largest dropped as A, B, B − A;
    the two truncation heatmaps on one colour range), from both sides' Frobenius h-block matrices."""
    from bptt_core.report import panels as P

    table, panels = P.compare_truncation_panels(L_a.value, L_b.value, k1, k2)
    return table, tuple(ready(p, lecture) for p in panels)


@st.cache_resource(**VIEWS)
def compare_clipping_view(
    runs_a: Result, runs_b: Result, twin: str, lecture: bool
) -> tuple[pd.DataFrame, tuple[Shown, ...]]:
    """Compare mode on the Clipping page: (each twin's divergence step, first clip, clip count and final
    loss as A, B, B − A; the chosen twin's gradient-norm histories on one axis), both sides' twins trained
    with the same TrainConfig (:data:`TWINS`)."""
    from bptt_core.report import panels as P

    table, panels = P.compare_clipping_panels(runs_a.value, runs_b.value, twin)
    return table, tuple(ready(p, lecture) for p in panels)
