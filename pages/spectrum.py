"""Spectrum: eigenvalues and singular values of W_hh, the Lyapunov spectrum, and what they predict."""

import numpy as np
import streamlit as st

from bptt_core.config import Block, Norm
from bptt_core.figures.labels import short_label
from bptt_core.flow.verdicts import gradient_verdict
from dashboard import compare_ui as CU
from dashboard import compute, layout
from dashboard import jobs_ui as JU
from dashboard import settings as S

PAGE = "spectrum"


def compare_section(ctx: compute.PageContext) -> None:
    """Compare mode: A's and B's spectra in one plane and on one axis, and ρ, σ₁, γσ₁, λ₁ as A, B, B − A."""
    ctx_b = CU.context_b()
    if ctx_b is None:
        return
    table, (eig, sv, lyap) = compute.compare_spectrum_view(ctx, ctx_b, S.lecture())  # its spinner: on a miss
    CU.metrics(PAGE, table, "sp_cmp_metrics")
    show_spectra(ctx, eig, sv, lyap)


def show_spectra(ctx: compute.PageContext, eig, sv, lyap) -> None:
    """Eigenvalues and singular values side by side, the Lyapunov spectrum below (A's, or A's and B's)."""
    c1, c2 = st.columns(2)
    with c1:
        layout.show_figure(PAGE, eig, ctx)
    with c2:
        layout.show_figure(PAGE, sv, ctx)
    layout.show_figure(PAGE, lyap, ctx)


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    cfg = ctx.cfg
    layout.export_format_toggle(PAGE)
    # The measured decay rate comes from the Gradient flow page's matrix when it is light or already computed.
    L = JU.ask_quietly(compute.FLOW, ctx, Norm.FRO, Block.H)
    spec, lam, rate, (eig, sv, lyap) = compute.spectrum_view(ctx, L, S.lecture())  # its spinner: on a miss only

    m = layout.row(5)
    m[0].metric("Spectral radius ρ", f"{spec.rho:.4g}")
    m[1].metric("Largest singular value σ₁", f"{spec.sigma1:.4g}")
    m[2].metric("γ (bound on |φ′|)", f"{spec.gamma:g}")
    m[3].metric("1/γ", f"{spec.bound:.4g}")
    m[4].metric("Top Lyapunov λ₁", f"{lam[0]:.3g}" if np.isfinite(lam[0]) else "−∞",
                help="The top Lyapunov exponent, in log10 growth per step along the driven trajectory.")  # fmt: skip

    verdict = gradient_verdict(spec.gamma, spec.sigma1, rate, cell=cfg.cell, rho=spec.rho)
    (st.warning if verdict.alarming else st.info)(verdict.text, icon=":material/insights:")
    if rate is None:
        st.caption(
            "The measured decay rate is left out: at this size the gradient-flow matrix is a background job. "
            "Open the Gradient flow page to compute it, and the rate appears here."
        )
    if cfg.cell != "rnn":
        st.caption(f"The matrix shown for the {cfg.cell.upper()} is {spec.matrix}.")
    if np.isfinite(lam[0]):
        st.markdown(f"The top Lyapunov exponent predicts **{short_label(lam[0])}× per step** at long lags.")
    show_spectra(ctx, eig, sv, lyap)
    if cfg.cell == "lru":  # Zucchet & Orvieto (2024): the other side of |λ| -> 1
        layout.show_figure(PAGE, compute.sensitivity_view(min(cfg.seq_len, 500), cfg.seed, S.lecture()), ctx)
    compare_section(ctx)
    layout.exports(PAGE, ctx)


ctx = layout.page_start(
    PAGE,
    "Spectrum",
    r"The recurrent matrix decides how gradients scale per step: with $\gamma \ge |\phi'|$, "
    r"$\gamma\sigma_1(W_{hh}) < 1$ guarantees vanishing gradients, $\gamma\sigma_1 = 1$ rules growth out, "
    r"and exploding needs $\gamma\sigma_1 > 1$.",
)
if ctx is None:
    st.stop()
body(ctx)
