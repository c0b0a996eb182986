"""Truncated BPTT: what TBPTT(k1, k2) drops, and full BPTT vs TBPTT vs RTRL, measured."""

from dataclasses import replace

import streamlit as st

from bptt_core.config import Block, Norm
from bptt_core.figures.heatmaps import stride_note
from bptt_core.figures.labels import short_label
from bptt_core.learning.training import TrainConfig
from dashboard import compare_ui as CU
from dashboard import compute, layout, player_ui
from dashboard import jobs_ui as JU
from dashboard import settings as S
from dashboard.settings import UI_MAX_SEQ_LEN, Setting

PAGE = "truncation"
K1 = Setting("tb_k1", "k1: update every k1 steps", "int", 10, lo=1, hi=UI_MAX_SEQ_LEN, step=1)
K2 = Setting("tb_k2", "k2: backpropagate k2 steps", "int", 10, lo=1, hi=UI_MAX_SEQ_LEN, step=1)
PLAYED = player_ui.played_run_settings("tb", "the model with TBPTT(k1, k2)")
SETTINGS = (K1, K2, *PLAYED.all)


def compare_section(L: compute.Result, k1: int, k2: int) -> None:
    """Compare mode: B's truncation heatmap beside A's (``L``) on one colour range, and the numbers as A, B, B − A."""
    ctx_b = CU.context_b()
    L_b = None if ctx_b is None else JU.ask(compute.FLOW, ctx_b, Norm.FRO, Block.H, what="B's gradient-flow matrix")
    if L_b is None:
        return
    table, shown = compute.compare_truncation_view(L, L_b, k1, k2, S.lecture())
    CU.metrics(PAGE, table, "tb_cmp_metrics")
    for col, heat in zip(st.columns(2), shown, strict=True):
        with col:
            layout.show_figure(PAGE, heat, ctx)


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    T = ctx.cfg.seq_len
    c = layout.row(3)
    # The sliders end at T: a window longer than the sequence means nothing. A k left above T by a
    # shorter sequence is brought down to T, and the page says so.
    k1s, k2s = (replace(k, hi=T, default=min(k.default, T)) for k in (K1, K2))
    for k in (k1s, k2s):
        if st.session_state.get(k.key, k.default) > T:
            st.warning(f"{k.key} = {st.session_state[k.key]} exceeds the sequence length T = {T}; it is now T.")
            st.session_state[k.key] = T
    k1 = S.page_setting(k1s, c[0])
    k2 = S.page_setting(k2s, c[1])
    layout.export_format_toggle(PAGE, c[2])

    L = JU.ask(compute.FLOW, ctx, Norm.FRO, Block.H)  # None: a background job, or refused with the reason
    if L is not None:
        view, heat = compute.truncation_view(L, k1, k2, S.lecture())
        m = layout.row(3)
        m[0].metric("Updates per sequence", view.updates)
        m[1].metric("Pairs (t, s) dropped", f"{100 * view.dropped_fraction:.1f} %")
        largest = "none" if view.largest_dropped is None else short_label(view.largest_dropped)
        m[2].metric("Largest dropped ‖∂h(t)/∂h(s)‖", largest)
        if note := stride_note(T):
            st.caption(note)
        layout.show_figure(PAGE, heat, ctx)
        compare_section(L, k1, k2)

    with st.spinner("Timing full BPTT, TBPTT and RTRL on this model…"):
        df = JU.ask(compute.COMPARISON, ctx, k1, k2)
    if df is not None:
        table, shown = compute.comparison_view(df, S.lecture())
        layout.show_figure(PAGE, shown, ctx)
        # A static table wraps its cells, so the notes are read whole (a data grid would cut them off).
        st.table(table, hide_index=True)
    played = player_ui.played_run_section(
        PAGE, ctx, PLAYED, lambda steps, lr: TrainConfig(steps=steps, lr=lr, k1=k1, k2=k2),
        f"the model with TBPTT({k1}, {k2})", f"TBPTT({k1}, {k2}) training",
    )  # fmt: skip
    player = {"player": played} if played else {}
    layout.exports(PAGE, ctx, SETTINGS, extra={"tb_k1": k1, "tb_k2": k2}, report_kw=dict(k1k2=(k1, k2), **player))


ctx = layout.page_start(
    PAGE,
    "Truncated BPTT",
    "TBPTT(k1, k2) (Williams & Peng 1990): every k1 steps, inject the losses since the last update and "
    "backpropagate through the last k2 states only; the state before the window is a constant. "
    "Full BPTT is TBPTT(n, n); RTRL (Williams & Zipser 1989) gets full BPTT's gradient with memory independent of n.",
)
if ctx is None:
    st.stop()
body(ctx)
