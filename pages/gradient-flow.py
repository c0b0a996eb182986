"""Gradient flow: log10 ||dh(t)/dh(s)|| for every pair of steps, and what is read off it."""

import numpy as np
import pandas as pd
import streamlit as st

from bptt_core import cost as K
from bptt_core import figures as F
from bptt_core import report as R
from bptt_core.jacobians import lag_view
from dashboard import jobs_ui as JU
from pages import common as C

PAGE = "gradient_flow"
NORM = C.Setting(
    "gf_norm", "Norm", "select", "fro", ("fro", "2"), help="Frobenius or spectral (largest singular value)."
)
VIEW = C.Setting(
    "gf_view", "Heatmap axes", "select", "t,s", ("t,s", "t,k"), help="(t, s) or the lag view (t, k = t − s)."
)
BLOCK = C.Setting(
    "gf_block", "LSTM block", "select", "h", ("h", "c"), help="LSTM only: h → h, or c → c (the cell state)."
)
HORIZON = C.Setting("gf_horizon", "Memory horizon threshold", "select", "1e-3", ("1e-2", "1e-3", "1e-6"))
COMPARE = C.Setting(
    "gf_compare", "Compare cells", "bool", False,
    help="Overlay the other cell (LSTM for a vanilla RNN, vanilla RNN for an LSTM) with the same settings.",
)  # fmt: skip
C.PAGE_SETTINGS[PAGE] = (NORM, VIEW, BLOCK, HORIZON, COMPARE)

cfg = C.page_start(
    PAGE,
    "Gradient flow",
    r"How much of a change in the state at step $s$ reaches step $t$: "
    r"$\|\partial h_t/\partial h_s\| = \|J_t J_{t-1}\cdots J_{s+1}\|$, exact, in log space.",
)
if cfg is None:
    st.stop()

c = st.columns(5)
norm = C.page_setting(NORM, c[0])
view = C.page_setting(VIEW, c[1])
block = C.page_setting(BLOCK, c[2], disabled=cfg.cell != "lstm")
threshold = float(C.page_setting(HORIZON, c[3]))
compare = C.page_setting(COMPARE, c[4], disabled=cfg.cell == "gru")
C.export_format_toggle(PAGE)
block = block if cfg.cell == "lstm" else "h"

# Light (the defaults: milliseconds): computed in this rerun. Heavier: a background job with progress and
# Cancel; over the per-request budget the page says what to lower, and "Run anyway" is for this one
# request only, bounded by the hard ceiling (bptt_core.cost).
L = JU.flow_matrix(cfg, norm, block, C.upload_for(cfg))
if L is None:
    st.stop()
with st.spinner("Computing the spectrum…"):
    spec = C.spectrum(cfg)
s = R.flow_summary(L, spec, cfg.cell, threshold)
T = L.shape[0]

m = st.columns(4)
m[0].metric("Decay rate", f"{s.rate:.3g}" if np.isfinite(s.rate) else "n/a",
            help="log10 per step: the least-squares slope of the mean log10 norm against lag k ≥ 1.")  # fmt: skip
m[1].metric("Per step factor", f"{10**s.rate:.3g}×" if np.isfinite(s.rate) else "n/a",
            help="10^rate: what each step back multiplies the norm by, on average.")  # fmt: skip
m[2].metric("Memory horizon", s.horizon if s.horizon is not None else f"> {T - 1}",
            help=f"In steps: the first lag where the norm is below {threshold:g} × its lag-0 value.")  # fmt: skip
m[3].metric("γσ₁ (Pascanu)", f"{s.gamma_sigma1:.3g}" if s.gamma_sigma1 else "n/a (gated cell)",
            help="Pascanu et al.'s bound per step: one step back scales a gradient by at most γσ₁.")  # fmt: skip

stride = F.display_stride(T)
M = L if view == "t,s" else lag_view(L)
Ms, _ = F.strided(M, stride)
heat = F.gradient_flow_heatmap(Ms, "fro" if norm == "fro" else 2, block, lag=view == "t,k")
if stride > 1:
    st.caption(f"The heatmap shows every {stride}th step (T = {T}); the CSV holds all of them.")
C.show_figure(
    heat,
    "gf_heatmap",
    R.matrix_frame(M, "t", "s" if view == "t,s" else "k"),
    "gradient-flow.csv",
    "Each cell is the norm of the Jacobian ∂h(t)/∂h(s): how strongly a perturbation of the hidden state at "
    "step s (column) changes the state at step t (row). The colour is log10 of it, so one colour step is a "
    "factor of 10; white is 1, blue is smaller (the gradient vanishes on its way back from t to s), red is "
    "larger (it explodes). The diagonal is the identity (√H in Frobenius norm, 1 in spectral norm). Cells "
    "above the diagonal are empty: a state never depends on later ones. Hover for the exact value, "
    "even far below float32's range: the products are renormalised and the scale kept as a logarithm.",
    PAGE,
)

compare_prof = {}
if compare and cfg.cell != "gru":
    other = "rnn" if cfg.cell == "lstm" else "lstm"
    ocfg = type(cfg)(**{**cfg.to_dict(), "cell": other, "activation": "tanh"})
    if R.problems(ocfg)[0]:
        pass
    elif not K.flow_cost(ocfg, norm).light:
        st.caption(f"The {other.upper()} comparison is left out: its matrix is heavy at these settings.")
    else:
        compare_prof[f"{other.upper()} with the same settings"] = R.lag_profile(C.flow_matrix(ocfg, norm, "h"))
prof_fig = F.lag_profile_figure(
    s.profile, rate=s.rate, gamma_sigma1=s.gamma_sigma1, horizon=s.horizon, threshold=threshold,
    norm="fro" if norm == "fro" else 2, compare=compare_prof, label=cfg.cell.upper(),
)  # fmt: skip
prof_df = R.profile_frame(s)
for name, p in compare_prof.items():
    prof_df[name] = p[: len(prof_df)]
C.show_figure(
    prof_fig,
    "gf_lag",
    prof_df,
    "norm-vs-lag.csv",
    "The mean over t of log10 ‖∂h(t)/∂h(t−k)‖ against the lag k: how the gradient's size changes as it "
    "travels k steps back. A straight line means geometric decay or growth; its slope is the decay rate "
    "(green dashes). The red dotted line is Pascanu et al.'s bound (γσ₁)ᵏ for a vanilla RNN (γ bounds |φ'|, "
    "σ₁ is W_hh's largest singular value): the measured curve can never rise above it. The vertical line is "
    f"the memory horizon: the first lag where the norm fell below {threshold:g} of its lag-0 value, a natural "
    "truncation length for TBPTT.",
    PAGE,
)

col1, col2 = st.columns(2)
with col1:
    g = C.loss_gradients(cfg)
    C.show_figure(
        F.loss_gradient_figure(g, "last"),
        "gf_dldh",
        pd.DataFrame({"t": np.arange(1, len(g) + 1), "dL_dh_norm": g}),
        "dL-dh.csv",
        "‖∂L/∂h(t)‖ for a loss taken on the last step only (the squared error of the linear readout): the "
        "gradient BPTT delivers to each hidden state. Read from right to left: it starts at the last step "
        "and shrinks (or grows) as it is carried back through the Jacobians.",
        PAGE,
    )
with col2:
    t_max = T - 1
    t = t_max if T <= 200 else 199  # the terms are (t+1) copies of W_hh: cap the default
    terms = C.contributions(cfg, t)
    C.show_figure(
        F.contributions_figure(terms, t),
        "gf_contrib",
        pd.DataFrame({"step_i": np.arange(1, len(terms) + 1), "term_fro_norm": terms}),
        "contributions.csv",
        f"∂ℓ_t/∂W_hh for the loss at step t = {t + 1} is a sum of one term per earlier step i: "
        "∂ℓ_t/∂h_t · ∂h_t/∂h_i · ∂⁺h_i/∂W_hh (∂⁺ is the immediate partial at step i). The bars are the "
        "terms' Frobenius norms; they sum (as matrices) exactly to autograd's gradient. When gradients "
        "vanish, only the last few steps contribute: the network cannot learn long-range dependencies.",
        PAGE,
    )

C.exports(PAGE, cfg, {k.key: st.session_state.get(k.key) for k in C.PAGE_SETTINGS[PAGE]},
          dict(norm=norm, block=block, threshold=threshold))  # fmt: skip
