"""Clipping: three twin training runs (no clipping, by norm, by value) from the same weights and batches."""

import numpy as np
import pandas as pd
import streamlit as st

from bptt_core import cost as K
from bptt_core import figures as F
from bptt_core import sources as SRC
from bptt_core.training import MAX_CLIP, MAX_LR, TrainConfig, twin_runs
from dashboard import jobs_ui as JU
from pages import common as C

PAGE = "clipping"
THRESH = C.Setting("clip_threshold", "Threshold c", "float", 1.0, lo=0.01, hi=MAX_CLIP, step=0.1,
                   help="Max global norm (by norm) or max |entry| (by value).")  # fmt: skip
STEPS = C.Setting("cl_steps", "Training steps", "int", 100, lo=10, hi=1000, step=10)
LR = C.Setting("cl_lr", "Learning rate", "float", 0.01, lo=0.0001, hi=MAX_LR, step=0.005)
OPT = C.Setting("cl_optimizer", "Optimizer", "select", "sgd", ("sgd", "adam"))
BATCH = C.Setting("cl_batch", "Batch size", "int", 8, lo=1, hi=64, step=1)
TWIN = C.Setting("cl_twin", "Heatmap of run", "select", "unclipped", ("unclipped", "norm", "value"))
C.PAGE_SETTINGS[PAGE] = (THRESH, STEPS, LR, OPT, BATCH, TWIN)

cfg = C.page_start(
    PAGE,
    "Gradient clipping",
    "Three runs from the same weights on the same batches: no clipping, clipping the global gradient norm "
    r"($g \leftarrow g \cdot c/\|g\|$ when $\|g\| > c$) and clipping each entry to $[-c, c]$ "
    "(Pascanu, Mikolov & Bengio 2013). They agree step for step until clipping first acts.",
)
if cfg is None:
    st.stop()

c = st.columns(5)
threshold = C.page_setting(THRESH, c[0])
steps = C.page_setting(STEPS, c[1])
lr = C.page_setting(LR, c[2], format="%.4f")
opt = C.page_setting(OPT, c[3])
batch = C.page_setting(BATCH, c[4])
C.export_format_toggle(PAGE)
try:
    tcfg = TrainConfig(steps=steps, optimizer=opt, lr=lr, batch_size=batch, clip="none", clip_threshold=threshold)
except ValueError as e:
    st.error(f"These training settings cannot be used: {e}")
    st.stop()


upload = C.upload_for(cfg)
if upload is not None:
    st.info(SRC.training_start(cfg, upload)[1], icon="ℹ️")


def twins_job(cfg, tcfg, upload):
    """The job that trains the twins (in a background worker) and keeps their histories as plain data
    (the trained modules are not kept)."""

    def run(progress, cancelled):
        initial = None if upload is None else SRC.training_start(cfg, upload)[0]
        out = twin_runs(cfg, tcfg, progress=progress, initial=initial, cancel=cancelled)
        return {
            k: dict(history=r.history, dh=r.dh_norms, diverged_at=r.diverged_at, first_clip=r.first_clip,
                    loss_on=r.loss_on, seconds=r.seconds)
            for k, r in out.items()
        }  # fmt: skip

    return run


# Keyed by what the training depends on only: the heatmap's run and the export format are views of it.
R = JU.light_or_background(
    ("clipping", cfg, tcfg, upload), twins_job(cfg, tcfg, upload), K.twins_cost(cfg, tcfg), "Training the three twins"
)
if R is None:
    C.exports(PAGE, cfg, {s.key: st.session_state.get(s.key) for s in C.PAGE_SETTINGS[PAGE]})
    st.stop()

hist = {k: r["history"] for k, r in R.items()}
div = {k: r["diverged_at"] for k, r in R.items()}
m = st.columns(3)
for col, (k, r) in zip(m, R.items(), strict=True):
    h = r["history"]
    state = (
        f"diverged at step {r['diverged_at']}"
        if r["diverged_at"] is not None
        else f"final loss {h['loss'].iloc[-1]:.4g}"
    )
    clip = (
        "never clipped"
        if r["first_clip"] is None
        else f"first clip at step {r['first_clip']}, {int(h['clipped'].sum())} clips"
    )
    # A plain caption, not a metric delta: a clip count is not a change, and a delta draws an arrow badge.
    col.metric(F.TWIN_LABELS[k], state)
    col.caption(clip if k != "unclipped" else f"max ‖g‖ {h['grad_norm'].max():.3g}")
if any(v is not None for v in div.values()):  # an outcome to show, not a failure of the page
    st.warning(
        "A run diverged: its loss or gradient became NaN/inf at the marked step, and it stopped there "
        "(no update is taken from a non-finite gradient). That is what clipping prevents.",
        icon="💥",
    )

both = pd.concat([h.assign(run=k) for k, h in hist.items()], ignore_index=True)
C.show_figure(
    F.grad_norm_history_figure(hist, threshold, div),
    "cl_gradnorm",
    both[["run", "step", "grad_norm", "grad_norm_clipped", "clipped", "nonfinite"]],
    "gradient-norms.csv",
    "The global L2 norm of the gradient of all parameters at every training step, before clipping, for the "
    "three twins (log scale). The dashed line is the threshold c: above it, clipping by norm rescales the "
    "whole gradient to norm c (direction kept); clipping by value clamps each entry to [−c, c] (direction "
    "changed). Ticks mark the steps where clipping changed the gradient. A vertical dotted line marks a run "
    "that diverged (NaN or inf). The runs coincide exactly until the first clip.",
    PAGE,
)
C.show_figure(
    F.loss_history_figure(hist, div),
    "cl_loss",
    both[["run", "step", "loss"]],
    "loss.csv",
    f"The training loss of each twin (log scale): squared error summed over output units and over "
    f"{'the last step' if R['unclipped']['loss_on'] == 'last' else 'every step'}, averaged over the batch.",
    PAGE,
)
twin = C.page_setting(TWIN)
dh = R[twin]["dh"]
frame = pd.DataFrame(dh, columns=[f"t{t + 1}" for t in range(dh.shape[1])]).assign(step=np.arange(len(dh)))
C.show_figure(
    F.dh_heatmap_figure(dh, F.TWIN_LABELS[twin]),
    "cl_dh",
    frame,
    "dL-dh-during-training.csv",
    "‖∂L/∂h(t)‖ at every time step t (columns) and every training step (rows), log colour scale: how much "
    "gradient each hidden state receives as training goes on. Vanishing shows as blue towards early t; an "
    "explosion as a red band at the steps where the gradient norm spikes.",
    PAGE,
)
C.exports(PAGE, cfg, {s.key: st.session_state.get(s.key) for s in C.PAGE_SETTINGS[PAGE]})
