"""Gradient flow: log10 ||dh(t)/dh(s)|| for every pair of steps, and what is read off it."""

import numpy as np
import streamlit as st

from bptt_core.config import Block, Norm
from bptt_core.figures.heatmaps import stride_note
from bptt_core.figures.labels import threshold_label
from bptt_core.learning.training import TrainConfig
from dashboard import compare_ui as CU
from dashboard import compute, layout, player_ui
from dashboard import jobs_ui as JU
from dashboard import settings as S
from dashboard.clicks import selected_cell
from dashboard.settings import Setting

PAGE = "gradient_flow"
NORM = Setting("gf_norm", "Norm", "select", "fro", ("fro", "2"), help="Frobenius or spectral (largest singular value).")
VIEW = Setting(
    "gf_view", "Heatmap axes", "select", "t,s", ("t,s", "t,k"), help="(t, s) or the lag view (t, k = t − s)."
)
BLOCK = Setting(
    "gf_block", "LSTM block", "select", "h", ("h", "c"), help="LSTM only: h → h, or c → c (the cell state)."
)
CENTRE = Setting(
    "gf_centre", "Colour centre", "select", "identity", ("identity", "one"),
    help="White at the lag-0 norm (the identity's), or at a norm of 1 (the absolute scale).",
)  # fmt: skip
HORIZON = Setting("gf_horizon", "Memory horizon threshold", "select", "1e-3", ("1e-2", "1e-3", "1e-6"))
COMPARE = Setting(
    S.COMPARE_CELLS, "Compare cells", "bool", False,
    help="Compare mode with B = A but for the cell (LSTM for a vanilla RNN, the vanilla RNN for the others): "
    "B's sidebar section shows it, and B's lag profile is drawn beside A's.",
)  # fmt: skip
CELL = Setting(
    "gf_cell", "Unrolled cell t,s", "cell", "", hi=S.UI_MAX_SEQ_LEN,
    help="Click a cell of the heatmap, or type t,s (1-indexed steps, s ≤ t): its chain J_t ⋯ J_(s+1) opens here.",
)  # fmt: skip
PLAYED = player_ui.played_run_settings("gf", "the model with full BPTT (no clipping)")
SETTINGS = (NORM, VIEW, BLOCK, CENTRE, HORIZON, COMPARE, CELL, *PLAYED.all)
CLICK_SEEN = "gf_cell_clicked"  # the last click taken into gf_cell: a click's selection outlives its rerun


def take_click(event, T: int, lag: bool) -> None:
    """A new click on the heatmap becomes the unrolled cell (before its text box is drawn, so the box
    and the URL show it); a typed cell stays until the next click."""
    try:
        cell = selected_cell(event, T, lag)
    except ValueError as e:
        st.warning(f"That point is not a cell with s ≤ t: {e}", icon=":material/warning:")
        return
    if cell is None:
        return
    spelled = f"{cell[0] + 1},{cell[1] + 1}"
    if st.session_state.get(CLICK_SEEN) != (spelled, lag):
        st.session_state[CLICK_SEEN] = (spelled, lag)
        st.session_state[CELL.key] = spelled


def unroll_section(ctx: compute.PageContext, L: compute.Result, norm: Norm, block: Block) -> tuple[int, int] | None:
    """The chain J_t ⋯ J_(s+1) behind the cell in gf_cell (clicked or typed); returns that cell, 0-indexed,
    when its chain is shown (the HTML report then includes it). ``L``: the page's matrix, whose value the
    chain is held to."""
    T = L.value.shape[0]
    st.subheader("Click to unroll")
    typed = S.page_setting(CELL)
    try:
        cell = S.cell_of(CELL.parse(typed) if typed else "")
    except ValueError:
        shown = typed[:20].replace("`", "'")
        st.warning(f"Unrolled cell `{shown}` is not {CELL.domain()}.", icon=":material/warning:")
        return None
    if cell is None:
        st.caption("Click a cell of the heatmap (or type t,s above) to open its chain of step Jacobians.")
        return None
    t1, s1 = cell
    if t1 > T:
        st.warning(
            f"gf_cell = {t1},{s1} is outside this sequence (T = {T}); click a cell or type t,s with t ≤ {T}.",
            icon=":material/warning:",
        )
        return None
    try:
        value, panels = compute.unroll_view(ctx, t1 - 1, s1 - 1, norm, block, S.lecture())
    except ValueError as e:
        st.error(f"This cell cannot be unrolled: {e}")
        return None
    heat = float(L.value[t1 - 1, s1 - 1])
    st.markdown(
        f"**∂h({t1})/∂h({s1})**: log10 of its norm = {value:.9g}, the chain multiplied out in float64; the "
        f"heatmap's value here (its chain in float64 too) is {heat:.9g} (they differ by {abs(value - heat):.1e})."
    )
    for shown in panels:
        layout.show_figure(PAGE, shown, ctx)
    return t1 - 1, s1 - 1


def compare_section(ctx: compute.PageContext, L: compute.Result, norm: Norm, block: Block, threshold: float) -> None:
    """Compare mode (compare=true): model B's heatmap beside A's (``L``) on one colour range, their log10
    ratio, and the headline numbers as A, B and B − A."""
    ctx_b = CU.context_b()
    L_b = None if ctx_b is None else JU.ask(compute.FLOW, ctx_b, norm, block, what="B's gradient-flow matrix")
    if L_b is None:
        return
    table, (heat_a, heat_b, ratio) = compute.compare_view(ctx, ctx_b, L, L_b, norm, threshold, S.lecture())
    CU.metrics(PAGE, table, "gf_cmp_metrics")
    for col, shown in zip(st.columns(2), (heat_a, heat_b), strict=True):
        with col:
            layout.show_figure(PAGE, shown, ctx)
    layout.show_figure(PAGE, ratio, ctx)


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    cfg = ctx.cfg
    if cfg.cell != "lstm":
        S.forget(BLOCK, "c")  # only an LSTM has a c block: a stale c leaves the session and the URL
    c = layout.row(6)
    norm = Norm.of(S.page_setting(NORM, c[0]))
    lag = S.page_setting(VIEW, c[1]) == "t,k"
    block = Block.shown(cfg.cell, S.page_setting(BLOCK, c[2], disabled=cfg.cell != "lstm"))
    centre = S.page_setting(CENTRE, c[3])
    threshold = float(S.page_setting(HORIZON, c[4]))
    if S.sync_compare_cells():
        st.rerun()  # the whole app: compare mode and B live in the sidebar, outside this fragment
    S.page_setting(COMPARE, c[5], on_change=S.compare_cells_changed)
    overlay = CU.quiet_flow_b(norm, block)
    layout.export_format_toggle(PAGE)

    # Light (the defaults: milliseconds): computed in this rerun. Heavier: a background job with progress and
    # Cancel; over the per-request budget the page says what to lower, and "Run anyway" is for this one
    # request only, bounded by the hard ceiling (dashboard/budget.py).
    L = JU.ask(compute.FLOW, ctx, norm, block)
    if L is None:
        return

    view = compute.gradient_flow_view(ctx, L, norm, block, lag, threshold, overlay, S.lecture(), centre)
    s, T = view.summary, len(view.summary.profile)
    m = layout.row(4)
    m[0].metric("Decay rate", f"{s.rate:.3g}" if np.isfinite(s.rate) else "n/a",
                help="log10 per step: the least-squares slope of the mean log10 norm against lag k ≥ 1.")  # fmt: skip
    m[1].metric("Per step factor", f"{10**s.rate:.3g}×" if np.isfinite(s.rate) else "n/a",
                help="10^rate: what each step back multiplies the norm by, on average.")  # fmt: skip
    m[2].metric("Memory horizon", s.horizon if s.horizon is not None else f"> {T - 1}",
                help=f"In steps: the first lag where the norm is below {threshold_label(threshold)} × its lag-0 value.")  # fmt: skip
    m[3].metric("γσ₁ (Pascanu)", f"{s.gamma_sigma1:.3g}" if s.gamma_sigma1 else "n/a (gated cell)",
                help="Pascanu et al.'s bound per step: one step back scales a gradient by at most γσ₁.")  # fmt: skip

    theory = compute.mean_field(ctx)
    if theory is not None:
        measured = f"{s.rate:+.3g}" if np.isfinite(s.rate) else "n/a"
        st.markdown(
            f"**Mean-field prediction** (tanh, Gaussian weights, input variance 1, H → ∞; Poole et al. 2016, "
            f"Chen et al. 2018): χ₁ = g²·E[φ′(z)²] = {theory['chi1']:.3g}, so the norm changes by "
            f"½·log10 χ₁ = **{theory['decay_rate']:+.3g}** decades per step (measured: **{measured}**); "
            f"memory time ξ = −1/ln χ₁ = {theory['memory_time']:.3g} steps; the edge of chaos χ₁ = 1 is at "
            f"g = {theory['boundary_gain']:.3g} (this network: g = {ctx.cfg.gain:g})."
        )
    heat, lag_fig, *pair = view.panels
    if note := stride_note(T):
        st.caption(note)
    take_click(layout.show_figure(PAGE, heat, ctx, selectable=True), T, lag)
    opened = unroll_section(ctx, L, norm, block)
    layout.show_figure(PAGE, lag_fig, ctx)
    if cfg.num_layers > 1:  # a stack: the depth x time picture at the last step
        layout.show_figure(PAGE, compute.depth_view(ctx, norm, S.lecture()), ctx)
    for col, shown in zip(st.columns(2), pair, strict=False):
        with col:
            layout.show_figure(PAGE, shown, ctx)
    played = player_ui.played_run_section(
        PAGE, ctx, PLAYED, lambda steps, lr: TrainConfig(steps=steps, lr=lr),
        "the model with full BPTT (no clipping)", "Full-BPTT training",
    )  # fmt: skip
    compare_section(ctx, L, norm, block, threshold)
    extra = ({"player": played} if played else {}) | ({"unroll": opened} if opened else {})
    layout.exports(PAGE, ctx, SETTINGS, report_kw=dict(norm=norm, block=block, threshold=threshold, **extra))


ctx = layout.page_start(
    PAGE,
    "Gradient flow",
    r"How much of a change in the state at step $s$ reaches step $t$: "
    r"$\|\partial h_t/\partial h_s\| = \|J_t J_{t-1}\cdots J_{s+1}\|$, exact, in log space.",
)
if ctx is None:
    st.stop()
body(ctx)
