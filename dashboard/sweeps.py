"""The Phase diagram page's computations: sweeps with progress, kept per spec, and links to a point.

A sweep shows its progress while it runs (st.progress), so it is not an ``st.cache_data`` function
(whose body's elements would be replayed); finished tables are kept in one bounded store per server.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from bptt_core.config import ModelConfig

from . import page_table
from .settings import GOTO, MODEL_SETTINGS, PENDING

STORE_ENTRIES = 16
PHASE_HEIGHT = 620  # pixels
COARSE_POINTS = 8  # per axis, of the quick first picture of a larger grid
# The page's limits (the command line's are larger: bptt_core.sweeps.grid.MAX_SWEEP_NETWORKS).
PAGE_MAX_NETWORKS = 2500  # 50 x 50, one seed
PAGE_MAX_TRAINING_RUNS = 64  # trainability trains every network
PAGE_MAX_FLOW_WORK = 5e10  # multiply-adds of the gradient-flow matrices of the whole grid (~tens of seconds)


@st.cache_resource(show_spinner=False)
def _store() -> tuple[threading.Lock, OrderedDict]:
    return threading.Lock(), OrderedDict()


def check_page_limits(spec) -> None:
    """ValueError (naming what to reduce) for a sweep too large to compute while a page waits."""
    from bptt_core.config import state_size
    from bptt_core.flow.plan import matrix_flops as flow_cost

    if spec.n_networks > PAGE_MAX_NETWORKS:
        raise ValueError(
            f"{spec.n_networks} networks ({spec.grid_shape} grid x {spec.seeds} seeds) is over the page's limit of "
            f"{PAGE_MAX_NETWORKS}; use fewer points or seeds, or the command line (python -m bptt_core sweep)"
        )
    if "trainability" in spec.measures and spec.n_networks > PAGE_MAX_TRAINING_RUNS:
        raise ValueError(
            f"trainability trains every network: {spec.n_networks} runs is over the page's limit of "
            f"{PAGE_MAX_TRAINING_RUNS}; use fewer points, or the command line"
        )
    if any(m in ("decay_rate", "memory_horizon") for m in spec.measures):
        H = max(
            [int(v) for a in spec.axes if a.name == "hidden_size" for v in (a.start, a.stop)] or [spec.base.hidden_size]
        )
        T = max([int(v) for a in spec.axes if a.name == "seq_len" for v in (a.start, a.stop)] or [spec.base.seq_len])
        work = spec.n_networks * flow_cost("fro", T, state_size(spec.base.cell, H))
        if work > PAGE_MAX_FLOW_WORK:
            raise ValueError(
                f"the decay rate and memory horizon need every network's gradient-flow matrix: {work:.2g} "
                f"multiply-adds is over the page's {PAGE_MAX_FLOW_WORK:.0e}; use fewer points, a smaller H or T, "
                "or the command line"
            )


def is_stored(spec) -> bool:
    lock, store = _store()
    with lock:
        return spec in store


def coarse(spec, points: int = COARSE_POINTS):
    """The same sweep on at most ``points`` per axis and one seed: what the page shows first while a
    large grid computes (a slider dragged on reruns the page, so the coarse picture answers at once)."""
    from dataclasses import replace

    from bptt_core.sweeps.grid import INT_AXES, Axis

    def thin(a):
        if a is None or a.count <= points:
            return a
        if a.name in INT_AXES:
            span = abs(int(a.stop) - int(a.start))
            n = next((c for c in range(points, 1, -1) if span % (c - 1) == 0), 2)
        else:
            n = points
        return Axis(a.name, a.start, a.stop, n)

    return replace(spec, x=thin(spec.x), y=thin(spec.y), seeds=1)


def sweep_table(spec, progress=None):
    """The sweep's table, computed (``progress(done, total)`` per chunk) or from the store."""
    from bptt_core.sweeps.run import assemble, run_local

    lock, store = _store()
    with lock:
        if spec in store:
            store.move_to_end(spec)
            return store[spec]
    table = assemble(spec, list(run_local(spec, progress).values()))
    with lock:
        store[spec] = table
        while len(store) > STORE_ENTRIES:
            store.popitem(last=False)
    return table


@st.cache_resource(max_entries=16, show_spinner=False)  # read-only, as dashboard.compute's views
def phase_spec(spec, measure: str, stat: str, edge_gain: float | None, lecture: bool) -> dict:
    """The phase diagram of a stored sweep as a styled figure dict, built and validated once per view
    (building it took more than half of the page's rerun: py-spy)."""
    from bptt_core.figures.style import style
    from bptt_core.sweeps.phase import phase_figure

    from .compute import plain_arrays

    fig = phase_figure(sweep_table(spec), [a.name for a in spec.axes], measure, stat, spec.seeds,
                       theory_line(spec), edge_gain)  # fmt: skip
    return plain_arrays(style(fig, lecture=lecture, height=PHASE_HEIGHT).to_dict())


@st.cache_data(max_entries=16, show_spinner=False)
def theory_line(spec):
    from bptt_core.sweeps.boundary import theory_line as line

    return line(spec)


@st.cache_data(max_entries=16, show_spinner=False)
def edge(cfg: ModelConfig, input_scale: float, bias_scale: float):
    """The edge finder's result, or the reason it has none (a message)."""
    from bptt_core.sweeps.boundary import edge_of_chaos
    from bptt_core.sweeps.grid import Network

    try:
        return edge_of_chaos(Network(cfg, input_scale, bias_scale))
    except ValueError as e:
        return str(e)


def point_values(cfg: ModelConfig, values: dict) -> tuple[dict | None, str | None]:
    """The model settings' widget values of the network at a grid point, or (None, why it cannot be
    shown on the single-network pages)."""
    extra = {k: v for k, v in values.items() if k in ("input_scale", "bias_scale")}
    if extra.get("input_scale", 1.0) != 1.0 or extra.get("bias_scale", 0.0) != 0.0:
        return None, (
            "this point has "
            + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in extra.items())
            + ": the single-network pages have no such setting (their input scale is 1, bias 0), so they cannot "
            "show this network"
        )
    try:
        point = ModelConfig(**{**cfg.to_dict(), **{k: v for k, v in values.items() if k not in extra}})
    except ValueError as e:
        return None, str(e)
    out = {}
    for s in MODEL_SETTINGS:
        v = getattr(point, s.attr)
        if s.kind in ("int", "float") and not s.lo <= v <= s.hi:
            return None, f"{s.label} = {v:g} is outside the dashboard's range [{s.lo:g}, {s.hi:g}]"
        out[s.key] = v
    return out, None


def open_point(target: str, values: dict) -> None:
    """Open the network on ``target``: the router applies the values and switches (as a preset does);
    that page's URL-bound widgets then write them into the URL."""
    st.session_state[PENDING] = values
    st.session_state[GOTO] = (page_table.page(target).key, {})
    st.rerun(scope="app")
