"""Truncated BPTT: what TBPTT(k1, k2) drops, and full BPTT vs TBPTT vs RTRL, measured."""

import streamlit as st

from bptt_core.figures import short_label
from dashboard import compute, layout
from dashboard import settings as S
from dashboard.settings import UI_MAX_SEQ_LEN, Setting

PAGE = "truncation"
K1 = Setting("tb_k1", "k1: update every k1 steps", "int", 10, lo=1, hi=UI_MAX_SEQ_LEN, step=1)
K2 = Setting("tb_k2", "k2: backpropagate k2 steps", "int", 10, lo=1, hi=UI_MAX_SEQ_LEN, step=1)
SETTINGS = (K1, K2)


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    T = ctx.cfg.seq_len
    c = st.columns(3)
    k1 = S.page_setting(K1, c[0])
    k2 = S.page_setting(K2, c[1])
    layout.export_format_toggle(PAGE, c[2])
    if k1 > T or k2 > T:
        st.warning(f"k1 = {k1} and k2 = {k2} cannot exceed the sequence length T = {T}; using min(k, T).")
        k1, k2 = min(k1, T), min(k2, T)

    if not compute.flow_affordable(ctx.cfg):
        st.warning("The gradient-flow matrix is too large for these settings here; lower T or H to see the mask.")
    else:
        view, heat = compute.truncation_view(ctx, k1, k2, S.lecture())
        m = st.columns(3)
        m[0].metric("Updates per sequence", view.updates)
        m[1].metric("Pairs (t, s) dropped", f"{100 * view.dropped_fraction:.1f} %")
        largest = "none" if view.largest_dropped is None else short_label(view.largest_dropped)
        m[2].metric("Largest dropped ‖∂h(t)/∂h(s)‖", largest)
        layout.show_figure(PAGE, heat)

    with st.spinner("Timing full BPTT, TBPTT and RTRL on this model…"):
        try:
            table, shown = compute.comparison_view(ctx, k1, k2, S.lecture())
        except ValueError as e:
            table = None
            st.error(f"The comparison could not run: {e}")
    if table is not None:
        layout.show_figure(PAGE, shown)
        # A static table wraps its cells, so the notes are read whole (a data grid would cut them off).
        st.table(table, hide_index=True)
    layout.exports(PAGE, ctx, SETTINGS, extra={"tb_k1": k1, "tb_k2": k2}, report_kw=dict(k1k2=(k1, k2)))


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
