"""Overview: what BPTT is, the equations, how to read the dashboard, and the presets."""

import streamlit as st

from bptt_core.figures.diagram import TITLE as DIAGRAM_TITLE
from dashboard import compute, layout
from dashboard import presets as P
from dashboard import settings as S
from dashboard.page_table import BY_KEY

PAGE = "overview"
TITLES = {k: p.title for k, p in BY_KEY.items()}

layout.frame()
st.title("BPTT Explorer")
# A heading and the text before it are one element: every element is a message and a redraw at every rerun.
st.markdown(
    "How gradients flow **backward through time** in recurrent networks. Change the model in the sidebar "
    "(cell, activation, hidden units, sequence length, initialisation, gain, seed, task); every page "
    "recomputes exactly what backpropagation through time (BPTT) does with it.\n\n## The unrolled network"
)
layout.diagram(compute.diagram_view(S.lecture()), "ov_diagram", DIAGRAM_TITLE)
st.markdown(
    "A recurrent network applies the same cell at every step. Unrolled over a sequence x₁ … xₙ it is a "
    "deep feed-forward network with shared weights, and BPTT is ordinary backpropagation through it: the "
    "error at step t travels back through every earlier step, multiplied by one Jacobian per step.\n\n"
    "## Presets: the classic experiments\n\n"
    ":small[:gray[One click on a preset's name sets the sidebar and opens the page where the effect shows.]]"
)
S.preset_picker()
# The cards are one element: every element is a message at every rerun, and the browser redraws for each.
layout.cards(P.PRESETS, TITLES)

st.header("Key equations")
c1, c2 = st.columns(2)
c1.markdown(  # one element per column: every element is a message at every rerun
    r"""**Forward** (vanilla RNN) and **loss**

$$\displaystyle h_t = \phi(W_{hh} h_{t-1} + W_{ih} x_t + b), \qquad \hat y_t = W_y h_t + b_y$$

$$\displaystyle L = \sum_t \ell_t, \qquad \ell_t = \sum_j (\hat y_{t,j} - y_{t,j})^2$$

**Step Jacobian** and the **gradient-flow matrix**

$$\displaystyle J_t = \frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(\phi'(a_t))\, W_{hh}$$

$$\displaystyle \frac{\partial h_t}{\partial h_s} = J_t J_{t-1} \cdots J_{s+1}$$"""
)
c2.markdown(
    r"""**BPTT**: the gradient is a sum over time of per-step contributions

$$\displaystyle \frac{\partial L}{\partial W} = \sum_t \sum_{i \le t} \frac{\partial \ell_t}{\partial h_t} \frac{\partial h_t}{\partial h_i} \frac{\partial^+ h_i}{\partial W}$$

**Vanishing and exploding** (Pascanu, Mikolov & Bengio 2013), with γ ≥ |φ'|

$$\displaystyle \Big\|\frac{\partial h_t}{\partial h_s}\Big\| \le (\gamma\, \sigma_1(W_{hh}))^{t-s}$$

σ₁ < 1/γ makes gradients vanish; σ₁ > 1/γ is needed for them to explode."""
)

st.markdown(
    f"""
## How to read the dashboard

- **{TITLES["gradient_flow"]}**: the heatmap of log10 ‖∂h(t)/∂h(s)‖ (white at the lag-0 norm, blue smaller, red
  larger), the norm against lag with its decay rate, the (γσ₁)ᵏ bound and the memory horizon, the per-step
  contributions, and for a stack the depth × time picture.
- **{TITLES["spectrum"]}**: eigenvalues of W_hh with the unit circle, singular values with the 1/γ line, the
  Lyapunov spectrum of the driven network, and for the LRU the sensitivity to λ.
- **{TITLES["clipping"]}**: three twin training runs (no clipping, clip by norm, clip by value).
- **{TITLES["truncation"]}**: what TBPTT(k1, k2) drops, and full BPTT vs TBPTT vs RTRL, measured.
- **{TITLES["calculator"]}**: parameters, memory, FLOPs and time, each labelled exact, measured or estimated.
- **{TITLES["runs"]}**: the gradient flow logged from your own training loop by `GradientFlowMonitor`.
- **{TITLES["phase_diagram"]}**: a grid of networks over two settings, the order/chaos boundary and its theory.

Colour bars and log axes are labelled by raw value (1e-6, 1e-3, 1, …, finer under one decade); hovering shows the
raw value. Under each figure, *What am I looking at? · CSV* opens its note and the CSV of its numbers; the camera
button saves PNG at 3× (or SVG), named after the page and the settings. The settings live in the URL: copy it to
share the view, or save them as JSON (*Share and export*, at the foot of each page) and open them again from the
sidebar. `?lecture=true` enlarges everything for a projector,
`?controls=false` hides every control, and `?slide=gf_heatmap` (any figure's key) shows that figure alone,
filling the screen.
"""
)
