"""Phase diagram: a grid of networks coloured by a measure, the order/chaos boundary and the mean-field line."""

import streamlit as st

from bptt_core.figures.phase import phase_diagram
from bptt_core.figures.style import style
from bptt_core.sweeps.boundary import theory_distance
from bptt_core.sweeps.grid import AXES, INT_AXES, MEASURES, Axis, SweepSpec
from bptt_core.sweeps.phase import phase_figure, summarise
from bptt_core.sweeps.table import read_sweep_csv, whole_count
from dashboard import compute, layout, sweeps
from dashboard import settings as S
from dashboard.clicks import selected_point
from dashboard.settings import UI_MAX_HIDDEN, UI_MAX_SEQ_LEN, Setting

PAGE = "phase_diagram"
CHART = "pd_chart"
NONE = "none"
RANGES = {  # axis -> (default start, default stop, lowest, highest, step, kind)
    "gain": (0.25, 3.0, 0.01, 100.0, 0.05, "float"),
    "spectral_radius": (0.25, 3.0, 0.01, 100.0, 0.05, "float"),
    "input_scale": (0.0, 2.0, 0.0, 100.0, 0.1, "float"),
    "bias_scale": (0.0, 1.0, 0.0, 100.0, 0.05, "float"),
    "hidden_size": (8, 64, 1, UI_MAX_HIDDEN, 1, "int"),
    "seq_len": (20, 100, 2, UI_MAX_SEQ_LEN, 1, "int"),
}
X = Setting("pd_x", "x axis", "select", "gain", AXES)
Y = Setting("pd_y", "y axis", "select", "hidden_size", (NONE, *AXES))
MEASURE = Setting("pd_measure", "Colour by", "select", "lyapunov", MEASURES)
STAT = Setting("pd_stat", "Show", "select", "mean", ("mean", "spread"), help="Mean over seeds, or their std.")
POINTS = Setting("pd_points", "Points per axis", "int", 12, lo=2, hi=50, step=1)
SEEDS = Setting("pd_seeds", "Seeds per point", "int", 1, lo=1, hi=5, step=1)
INPUT = Setting("pd_input", "Input scale (when not an axis)", "float", 1.0, lo=0.0, hi=100.0, step=0.1)
BIAS = Setting("pd_bias", "Bias scale σ_b (when not an axis)", "float", 0.0, lo=0.0, hi=100.0, step=0.05)
EDGE = Setting("pd_edge", "Find the edge of chaos", "bool", True,
               help="Bisection on the gain for the sidebar's network: where λ₁ crosses 0.")  # fmt: skip
OPEN = Setting("pd_open", "A click opens the network on", "select", "gradient_flow", ("gradient_flow", "spectrum"))
LO = {a: Setting(f"pd_{a}_lo", f"{a} from", r[5], r[0], lo=r[2], hi=r[3], step=r[4]) for a, r in RANGES.items()}
HI = {a: Setting(f"pd_{a}_hi", f"{a} to", r[5], r[1], lo=r[2], hi=r[3], step=r[4]) for a, r in RANGES.items()}
SETTINGS = (X, Y, MEASURE, STAT, POINTS, SEEDS, INPUT, BIAS, EDGE, OPEN, *LO.values(), *HI.values())


def axis_controls(name: str, container) -> tuple[float, float]:
    c1, c2 = container.columns(2)
    return S.page_setting(LO[name], c1), S.page_setting(HI[name], c2)


def make_spec(cfg):
    """The sweep the controls describe (ValueError naming a bad setting)."""
    c = layout.row(4)
    x = S.page_setting(X, c[0])
    y = S.page_setting(Y, c[1])
    if x == y:
        raise ValueError(f"x axis and y axis are both {x}: choose two different settings")
    measure = S.page_setting(MEASURE, c[2])
    stat = S.page_setting(STAT, c[3])
    c = layout.row(4)
    points = S.page_setting(POINTS, c[0])
    seeds = S.page_setting(SEEDS, c[1])
    input_scale = S.page_setting(INPUT, c[2])
    bias = S.page_setting(BIAS, c[3])
    c = st.columns(2)
    xr = axis_controls(x, c[0])
    yr = axis_controls(y, c[1]) if y != NONE else None
    measures = tuple(dict.fromkeys((measure, "lyapunov")))  # lambda_1 always: it draws the boundary
    nx = whole_count(x, *xr, points)
    ny = whole_count(y, *yr, points) if yr else 0
    for name, n in ((x, nx), (y, ny)):
        if name in INT_AXES and n != points:
            st.caption(f"{name}: {n} points, so that every step is a whole number.")
    spec = SweepSpec(
        cfg,
        Axis(x, *xr, nx),
        Axis(y, *yr, ny) if yr else None,
        seeds=seeds,
        measures=measures,
        input_scale=input_scale,
        bias_scale=bias,
    )
    return spec, measure, stat


def draw(spec: dict):
    """The map (a figure dict); returns its selection event (a clicked point)."""
    return layout.chart(spec, CHART, PAGE, selectable=True)


def boundary_text(table, line, axes) -> None:
    if line is None:
        return
    if line.frame is None:
        st.info(f"No mean-field line: {line.reason}.")
        return
    d = theory_distance(table, line)
    if d is None:
        return
    if d["rows"]:
        st.markdown(
            f"**Theory against measurement:** the measured boundary (first λ₁ = 0 crossing of the seed mean along "
            f"{line.gain_axis}) lies on average **{d['mean']:.3g}** (at most {d['max']:.3g}) in {line.gain_axis} from "
            f"the mean-field line χ₁ = 1, over {d['rows']} row(s). The theory is for H → ∞"
            f"{'; the spectral radius stands for g (circular law).' if line.gain_axis == 'spectral_radius' else '.'}"
        )
    else:
        st.markdown("**Theory against measurement:** λ₁ does not cross 0 inside this grid, so there is no distance.")


@st.fragment
def body(ctx: compute.PageContext) -> None:
    cfg = ctx.cfg
    upload = st.file_uploader("Open a sweep file (sweep.csv written by `python -m bptt_core sweep`)", type=["csv"],
                              key="pd_file")  # fmt: skip
    if upload is not None:
        try:
            f = read_sweep_csv(upload.getvalue(), upload.name)
        except ValueError as e:
            st.error(str(e))
            return
        measure = st.selectbox("Colour by", f.measures, key="pd_file_measure")
        seeds = int(f.table["seed"].nunique())
        st.caption(f"{upload.name}: {len(f.table)} rows, axes {', '.join(f.axes)}, {seeds} seed(s). The file does "
                   "not say which cell it sweeps, so no mean-field line and no click-to-open.")  # fmt: skip
        fig = phase_figure(f.table, f.axes, measure, seeds=seeds)
        draw(style(fig, lecture=S.lecture(), height=sweeps.PHASE_HEIGHT).to_dict())
        return
    try:
        spec, measure, stat = make_spec(cfg)
        sweeps.check_page_limits(spec)
    except ValueError as e:
        st.error(str(e))
        return
    preview = st.empty()
    quick = sweeps.coarse(spec)
    if quick != spec and not sweeps.is_stored(spec):  # a large grid: a coarse picture first
        small = sweeps.sweep_table(quick)
        with preview.container():
            st.caption(f"A coarse {quick.grid_shape} preview while the {spec.grid_shape} grid computes…")
            fig = phase_diagram(summarise(small, [a.name for a in quick.axes], measure), quick.x.name,
                                  quick.y.name if quick.y else None, measure)  # fmt: skip
            st.plotly_chart(style(fig, height=sweeps.PHASE_HEIGHT), config=layout.plotly_config(PAGE), theme=None)
    bar = st.progress(0.0, text=f"Computing {spec.n_networks} networks…")
    table = sweeps.sweep_table(
        spec, lambda d, n: bar.progress(d / n, text=f"{d}/{n} chunks of {spec.n_networks} networks")
    )
    bar.empty()
    preview.empty()
    line = sweeps.theory_line(spec)
    axes = [a.name for a in spec.axes]
    edge_gain = None
    if S.page_setting(EDGE) and "gain" in axes:
        if cfg.spectral_radius > 0:
            st.info("Edge finder: off while a spectral radius is set (it varies the gain, which ρ overrides).")
        else:
            e = sweeps.edge(cfg, spec.input_scale, spec.bias_scale)
            if isinstance(e, str):
                st.info(f"Edge finder: {e}")
            else:
                edge_gain = e.gain
                st.markdown(f"**Edge of chaos** for the sidebar's network (seed {cfg.seed}): gain **{e.gain:.4g}**, "
                            f"where λ₁ = {e.lyapunov:+.2g} log10 per step ({e.steps} bisection steps, each exact).")  # fmt: skip
    event = draw(sweeps.phase_spec(spec, measure, "mean" if stat == "mean" else "std", edge_gain, S.lecture()))
    boundary_text(table, line, axes)
    ordered = int((table["lyapunov"] < 0).sum())
    st.caption(f"{len(table)} networks ({spec.grid_shape} grid × {spec.seeds} seed(s)): {ordered} ordered (λ₁ < 0), "
               f"{len(table) - ordered} at or beyond the edge (λ₁ ≥ 0).")  # fmt: skip
    target = S.page_setting(OPEN)
    point = selected_point(event, axes)
    if point is not None:
        values, why = sweeps.point_values(cfg, point)
        if values is None:
            st.warning(f"Cannot open the network at {point}: {why}.")
        else:
            sweeps.open_point(target, values)
    explain_and_table(table)
    layout.exports(PAGE, ctx, SETTINGS)


def explain_and_table(table) -> None:
    """The map's "What am I looking at? · CSV", lazy like every figure's (layout.show_figure): the paragraph, the
    theory's equations and the table as CSV are drawn only while it is open."""
    more = st.expander(layout.DETAILS_LABEL, key=layout.details_key(CHART), on_change="rerun")
    if not more.open:
        return
    with more:
        st.markdown(
            "Every grid point is a network built as the other pages build it (the sidebar's cell, activation, "
            "initialisation, task and seed), with the two settings on the axes changed; *input scale* multiplies the "
            "input sequence and *bias scale* adds a bias drawn from N(0, σ_b²). Each is measured exactly as the "
            "Spectrum page (λ₁, the top Lyapunov exponent in log10 per step) and the Gradient flow page (decay rate, "
            "memory horizon) measure one network. The black line is the measured order/chaos boundary λ₁ = 0; the "
            "dashed green line is the mean-field prediction χ₁ = g²·E[φ′(√q* z)²] = 1 for tanh with Gaussian "
            "weights (Poole et al. 2016, driven by the input and bias variances). Click a point to open that network."
        )
        st.latex(r"q^* = g^2\,\mathbb{E}[\tanh(\sqrt{q^*}z)^2] + \sigma_{in}^2 + \sigma_b^2,\quad"
                 r"\chi_1 = g^2\,\mathbb{E}[\operatorname{sech}^4(\sqrt{q^*}z)],\quad \xi = -1/\ln\chi_1")  # fmt: skip
        st.download_button("Table (CSV)", table.to_csv(index=False).encode(), file_name="sweep.csv", mime="text/csv",
                           key="pd_csv", on_click="ignore", icon=":material/download:")  # fmt: skip


ctx = layout.page_start(
    PAGE,
    "Phase diagram",
    "How the picture changes with the settings: a grid of networks, each coloured by a measure, with the "
    "order/chaos boundary (λ₁ = 0) and the mean-field theory drawn on it.",
)
if ctx is None:
    st.stop()
body(ctx)
