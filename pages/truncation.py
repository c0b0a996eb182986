"""Truncated BPTT: what TBPTT(k1, k2) drops, and full BPTT vs TBPTT vs RTRL, measured."""

import numpy as np
import pandas as pd
import streamlit as st

from bptt_core import cost as K
from bptt_core import figures as F
from bptt_core import report as R
from dashboard import jobs_ui as JU
from pages import common as C

PAGE = "truncation"
K1 = C.Setting("tb_k1", "k1: update every k1 steps", "int", 10, lo=1, hi=C.UI_MAX_SEQ_LEN, step=1)
K2 = C.Setting("tb_k2", "k2: backpropagate k2 steps", "int", 10, lo=1, hi=C.UI_MAX_SEQ_LEN, step=1)
C.PAGE_SETTINGS[PAGE] = (K1, K2)


def comparison_job(cfg, k1: int, k2: int, upload=None):
    def run(progress, cancelled):
        return R.comparison_of(cfg, k1, k2, upload=upload)

    return run


@st.cache_data(max_entries=16, show_spinner=False)
def kept(T: int, k1: int, k2: int):
    return R.kept_mask_of(T, k1, k2)


cfg = C.page_start(
    PAGE,
    "Truncated BPTT",
    "TBPTT(k1, k2) (Williams & Peng 1990): every k1 steps, inject the losses since the last update and "
    "backpropagate through the last k2 states only; the state before the window is a constant. "
    "Full BPTT is TBPTT(n, n); RTRL (Williams & Zipser 1989) gets full BPTT's gradient with memory independent of n.",
)
if cfg is None:
    st.stop()

T = cfg.seq_len
c = st.columns(3)
k1 = C.page_setting(K1, c[0])
k2 = C.page_setting(K2, c[1])
C.export_format_toggle(PAGE, c[2])
if k1 > T or k2 > T:
    st.warning(f"k1 = {k1} and k2 = {k2} cannot exceed the sequence length T = {T}; using min(k, T).")
    k1, k2 = min(k1, T), min(k2, T)

L = JU.flow_matrix(cfg, "fro", "h", C.upload_for(cfg))  # None: a background job, or refused with the reason
if L is not None:
    keep = kept(T, k1, k2)
    drop = ~keep & ~np.isnan(L)
    frac = drop.sum() / max(1, (~np.isnan(L)).sum())
    updates = len(range(k1, T + 1, k1)) + (1 if T % k1 else 0)
    m = st.columns(3)
    m[0].metric("Updates per sequence", updates)
    m[1].metric("Pairs (t, s) dropped", f"{100 * frac:.1f} %")
    lost = L[drop]
    m[2].metric("Largest dropped ‖∂h(t)/∂h(s)‖", F.short_label(float(np.nanmax(lost))) if lost.size else "none")
    stride = F.display_stride(T)
    Ls, _ = F.strided(L, stride)
    fig = F.gradient_flow_heatmap(Ls, "fro", "h", mask=drop[::stride, ::stride])
    fig.update_layout(title=f"TBPTT({k1}, {k2}): the gradient paths truncation drops, in grey")
    frame = R.matrix_frame(L).assign(kept=keep[~np.isnan(L)])
    C.show_figure(
        fig,
        "tb_heatmap",
        frame,
        "tbptt-mask.csv",
        "The gradient-flow heatmap of log10 ‖∂h(t)/∂h(s)‖, with the pairs (t, s) whose contribution "
        f"∂ℓ_t/∂h_s TBPTT({k1}, {k2}) never computes painted grey. The loss at step t is injected at the first "
        "update τ ≥ t and flows back only through that update's window h(τ−k2+1) … h(τ), so what is kept is a "
        "staircase along the diagonal. If the coloured cells that turned grey are deep blue, truncation loses "
        "little; if they are white or red, it cuts off gradient that matters.",
        PAGE,
    )

up = C.upload_for(cfg)
with st.spinner("Timing full BPTT, TBPTT and RTRL on this model…"):
    df = JU.light_or_background(
        ("compare", cfg, k1, k2, up), comparison_job(cfg, k1, k2, up), K.comparison_cost(cfg, k1, k2), "The comparison"
    )
if df is not None:
    C.show_figure(
        F.comparison_figure(df),
        "tb_compare",
        df,
        "bptt-vs-tbptt-vs-rtrl.csv",
        "Measured on this machine for the first sequence of the task: the bytes autograd holds for backward at "
        "the largest update (full BPTT and TBPTT, counted with saved-tensor hooks) or RTRL's sensitivity "
        "matrices; the median time per parameter update; and the cosine between each gradient and full BPTT's "
        "(1 = the same direction). RTRL is exact, with memory independent of the sequence length but cost "
        "growing like H⁴ per step.",
        PAGE,
    )
    shown = df.copy()
    shown["memory_KiB"] = shown["memory_bytes"].astype(float) / 1024
    shown["time_per_update_ms"] = shown["time_per_update_s"].astype(float) * 1e3

    # A static table wraps its cells, so the notes are read whole (a data grid would cut them off).
    table = pd.DataFrame(
        {
            "variant": shown["variant"],
            "k1": shown["k1"].map(lambda v: "—" if pd.isna(v) else str(int(v))),
            "k2": shown["k2"].map(lambda v: "—" if pd.isna(v) else str(int(v))),
            "updates": shown["updates"],
            "memory (KiB)": shown["memory_KiB"].map(lambda v: f"{v:.4g}"),
            "memory counted by": shown["memory_how"],
            "time / update (ms)": shown["time_per_update_ms"].map(lambda v: f"{v:.3g}"),
            "cosine to full BPTT": shown["cosine"].map(lambda v: f"{v:.6f}"),
            "norm / full BPTT's": shown["relative_norm"].map(lambda v: f"{v:.4g}"),
            "note": shown["note"],
        }
    ).fillna("—")
    st.table(table, hide_index=True)
C.exports(PAGE, cfg, {"tb_k1": k1, "tb_k2": k2}, dict(k1k2=(k1, k2)))
