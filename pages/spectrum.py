"""Spectrum: eigenvalues and singular values of W_hh, the Lyapunov spectrum, and what they predict."""

import numpy as np
import streamlit as st

from dashboard import compute, layout
from dashboard import settings as S

PAGE = "spectrum"


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    cfg = ctx.cfg
    layout.export_format_toggle(PAGE)
    with st.spinner("Spectra…"):
        spec, lam, rate, (eig, sv, lyap) = compute.spectrum_view(ctx, S.lecture())

    m = st.columns(5)
    m[0].metric("Spectral radius ρ", f"{spec.rho:.4g}")
    m[1].metric("Largest singular value σ₁", f"{spec.sigma1:.4g}")
    m[2].metric("γ (bound on |φ′|)", f"{spec.gamma:g}")
    m[3].metric("1/γ", f"{spec.bound:.4g}")
    m[4].metric("Top Lyapunov λ₁", f"{lam[0]:.3g}" if np.isfinite(lam[0]) else "−∞",
                help="The top Lyapunov exponent, in log10 growth per step along the driven trajectory.")  # fmt: skip

    if cfg.cell == "rnn":
        # σ₁ ≥ 1/γ is the default (orthogonal init) and only says exploding is possible: information, not alarm.
        (st.success if spec.sigma1 < spec.bound else st.info)(spec.verdict(plain=False))
    else:
        st.info(
            f"For the {cfg.cell.upper()} the matrix shown is {spec.matrix}; Pascanu's bound is for the vanilla RNN. "
            "The gates make the Jacobian depend on the state: the Lyapunov exponents below are the measured rates."
        )
    if rate is not None and np.isfinite(rate):
        st.markdown(
            f"Measured on the gradient-flow page's matrix: the norm changes by **$10^{{{rate:.3g}}}$ = "
            f"{10**rate:.3g}× per step**; the top Lyapunov exponent predicts {10 ** lam[0]:.3g}× per step at "
            "long lags."
        )
    c1, c2 = st.columns(2)
    with c1:
        layout.show_figure(PAGE, eig)
    with c2:
        layout.show_figure(PAGE, sv)
    layout.show_figure(PAGE, lyap)
    layout.exports(PAGE, ctx)


ctx = layout.page_start(
    PAGE,
    "Spectrum",
    r"The recurrent matrix decides how gradients scale per step: with $\gamma \ge |\phi'|$, "
    r"$\sigma_1(W_{hh}) < 1/\gamma$ guarantees vanishing gradients; exploding needs $\sigma_1 > 1/\gamma$.",
)
if ctx is None:
    st.stop()
body(ctx)
