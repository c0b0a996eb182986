"""Spectrum: eigenvalues and singular values of W_hh, the Lyapunov spectrum, and what they predict."""

import numpy as np
import pandas as pd
import streamlit as st

from bptt_core import figures as F
from bptt_core import report as R
from pages import common as C

PAGE = "spectrum"
C.PAGE_SETTINGS[PAGE] = ()

cfg = C.page_start(
    PAGE,
    "Spectrum",
    r"The recurrent matrix decides how gradients scale per step: with $\gamma \ge |\phi'|$, "
    r"$\gamma\sigma_1(W_{hh}) < 1$ guarantees vanishing gradients, $\gamma\sigma_1 = 1$ rules growth out, "
    r"and exploding needs $\gamma\sigma_1 > 1$.",
)
if cfg is None:
    st.stop()
C.export_format_toggle(PAGE)

with st.spinner("Spectra…"):
    spec = C.spectrum(cfg)
    lam = C.lyapunov(cfg)
    rate = R.decay_rate(C.flow_matrix(cfg, "fro", "h")) if R.flow_flops(cfg) <= R.FLOW_FLOP_BUDGET else None

m = st.columns(5)
m[0].metric("Spectral radius ρ", f"{spec.rho:.4g}")
m[1].metric("Largest singular value σ₁", f"{spec.sigma1:.4g}")
m[2].metric("γ (bound on |φ′|)", f"{spec.gamma:g}")
m[3].metric("1/γ", f"{spec.bound:.4g}")
m[4].metric("Top Lyapunov λ₁", f"{lam[0]:.3g}" if np.isfinite(lam[0]) else "−∞",
            help="The top Lyapunov exponent, in log10 growth per step along the driven trajectory.")  # fmt: skip

verdict = R.gradient_verdict(spec.gamma, spec.sigma1, rate, cell=cfg.cell)
(st.warning if verdict.alarming else st.info)(verdict.text, icon=":material/insights:")
if cfg.cell != "rnn":
    st.caption(f"The matrix shown for the {cfg.cell.upper()} is {spec.matrix}.")
if np.isfinite(lam[0]):
    st.markdown(f"The top Lyapunov exponent predicts **{F.short_label(lam[0])}× per step** at long lags.")

c1, c2 = st.columns(2)
eig, sv = R.spectrum_frames(spec)
with c1:
    C.show_figure(
        F.eigenvalue_figure(spec.eigenvalues, spec.rho, spec.matrix),
        "sp_eig",
        eig,
        "eigenvalues.csv",
        f"The eigenvalues λ of {spec.matrix} in the complex plane, with the unit circle |λ| = 1. In a linear "
        "RNN, a component along an eigenvector is multiplied by λ at every step: inside the circle it decays, "
        "outside it grows. The spectral radius ρ = max |λ| (dotted circle) sets the long-run rate of $W_{hh}^k$; "
        "a Gaussian init with gain g fills the disk of radius g (the circular law), an orthogonal one puts "
        "every eigenvalue on the circle.",
        PAGE,
    )
with c2:
    C.show_figure(
        F.singular_values_figure(spec.singular_values, spec.gamma, spec.matrix),
        "sp_sv",
        sv,
        "singular-values.csv",
        "The singular values σ_i of W_hh, largest first. σ₁ is the most a single step can stretch any vector; "
        "with the activation's slope bounded by γ, one step of backpropagation scales a gradient by at most "
        "γσ₁. The dashed line is 1/γ: if σ₁ lies below it, gradients must vanish geometrically (Pascanu et "
        "al. 2013); above it they may explode, but need not: the measured decay rate tells.",
        PAGE,
    )
C.show_figure(
    F.lyapunov_figure(lam, rate),
    "sp_lyap",
    pd.DataFrame({"i": np.arange(1, len(lam) + 1), "lyapunov_log10_per_step": lam}),
    "lyapunov.csv",
    "The Lyapunov exponents of the network driven by its input sequence (QR method, Benettin et al. 1980): "
    "the average log10 growth per step of perturbations of the state along the actual trajectory, from "
    "most to least expanding. The top one is the rate at which ‖∂h(t)/∂h(s)‖ grows or decays at long lags; "
    "negative (blue) means vanishing. The green line is the decay rate fitted on the gradient-flow page.",
    PAGE,
)
C.exports(PAGE, cfg)
