"""Gradient flow: log10 ||dh(t)/dh(s)|| for every pair of steps, and what is read off it."""

import numpy as np
import pandas as pd
import streamlit as st

from bptt_core import figures as F
from bptt_core import report as R
from bptt_core.jacobians import lag_view
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
CENTRE = C.Setting(
    "gf_centre", "Colour centre", "select", "identity", F.HEAT_CENTRES,
    help="White at the lag-0 norm (the identity's), or at a norm of 1 (the absolute scale).",
)  # fmt: skip
HORIZON = C.Setting("gf_horizon", "Memory horizon threshold", "select", "1e-3", ("1e-2", "1e-3", "1e-6"))
COMPARE = C.Setting(
    "gf_compare", "Compare cells", "bool", False,
    help="Overlay another cell with the same settings (LSTM for a vanilla RNN, the vanilla RNN for the others).",
)  # fmt: skip
C.PAGE_SETTINGS[PAGE] = (NORM, VIEW, BLOCK, CENTRE, HORIZON, COMPARE)

cfg = C.page_start(
    PAGE,
    "Gradient flow",
    r"How much of a change in the state at step $s$ reaches step $t$: "
    r"$\|\partial h_t/\partial h_s\| = \|J_t J_{t-1}\cdots J_{s+1}\|$, exact, in log space.",
)
if cfg is None:
    st.stop()

c = st.columns(6)
norm = C.page_setting(NORM, c[0])
view = C.page_setting(VIEW, c[1])
block = C.page_setting(BLOCK, c[2], disabled=cfg.cell != "lstm")
centre = C.page_setting(CENTRE, c[3])
threshold = float(C.page_setting(HORIZON, c[4]))
compare = C.page_setting(COMPARE, c[5], disabled=cfg.cell == "gru")
C.export_format_toggle(PAGE)
block = block if cfg.cell == "lstm" else "h"

flops = R.flow_flops(cfg, norm)
if flops > R.FLOW_FLOP_BUDGET and not st.session_state.get("gf_force"):
    st.warning(
        f"These settings need about {flops:.1e} multiply-adds for the exact matrix (tens of seconds or more). "
        "Lower the sequence length or hidden units, use the Frobenius norm, or compute anyway."
    )
    st.button("Compute anyway", key="gf_force_btn", on_click=lambda: st.session_state.update(gf_force=True))
    st.stop()

with st.spinner("Multiplying step Jacobians…"):
    L = C.flow_matrix(cfg, norm, block)
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

M = L if view == "t,s" else lag_view(L)
heat = F.gradient_flow_heatmap(M, "fro" if norm == "fro" else 2, block, lag=view == "t,k", centre=centre)
if note := F.stride_note(T):
    st.caption(note)
C.show_figure(
    heat,
    "gf_heatmap",
    R.matrix_frame(M, "t", "s" if view == "t,s" else "k"),
    "gradient-flow.csv",
    "Each cell is the norm of the Jacobian ∂h(t)/∂h(s): how strongly a perturbation of the hidden state at "
    "step s (column) changes the state at step t (row). The colour is log10 of it, so one colour step is a "
    "factor of 10. White is the norm at lag 0, the identity's (√H in Frobenius norm, 1 in spectral norm; "
    "'Colour centre' can make white a norm of 1 instead); blue is smaller (the gradient vanishes on its way "
    "back from t to s), red is larger (it explodes). Cells "
    "above the diagonal are empty: a state never depends on later ones. Hover for the exact value, "
    "even far below float32's range: the products are renormalised and the scale kept as a logarithm.",
    PAGE,
)

compare_prof = {}
if compare and cfg.cell != "gru":
    other = "lstm" if cfg.cell == "rnn" else "rnn"  # every other cell against the vanilla RNN
    ocfg = type(cfg)(**{**cfg.to_dict(), "cell": other, "activation": "tanh"})
    if not R.problems(ocfg)[0]:
        compare_prof[f"{other.upper()} with the same settings"] = R.lag_profile(C.flow_matrix(ocfg, norm, "h"))
prof_fig = F.lag_profile_figure(
    s.profile, rate=s.rate, gamma_sigma1=s.gamma_sigma1, horizon=s.horizon, threshold=threshold,
    norm="fro" if norm == "fro" else 2, compare=compare_prof, label=cfg.cell.upper(), block=block,
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
