"""Clipping: three twin training runs (no clipping, by norm, by value) from the same weights and batches."""

import streamlit as st

from bptt_core.analyses import cost as K
from bptt_core.figures.training import TWIN_LABELS
from bptt_core.learning.training import CLIPPING_STORY as D_TRAIN
from bptt_core.learning.training import MAX_CLIP, MAX_LR, TrainConfig, snapshot_count, state_bytes
from dashboard import compare_ui as CU
from dashboard import compute, layout, player_ui
from dashboard import jobs_ui as JU
from dashboard import settings as S
from dashboard.budget import fits, max_steps_within
from dashboard.settings import Setting

PAGE = "clipping"
THRESH = Setting("clip_threshold", "Threshold c", "float", D_TRAIN.clip_threshold, lo=0.01, hi=MAX_CLIP, step=0.1,
                 help="Max global norm (by norm) or max |entry| (by value).")  # fmt: skip
STEPS = Setting("cl_steps", "Training steps", "int", D_TRAIN.steps, lo=10, hi=1000, step=10)
LR = Setting("cl_lr", "Learning rate", "float", D_TRAIN.lr, lo=0.0001, hi=MAX_LR, step=0.001)
OPT = Setting("cl_optimizer", "Optimizer", "select", D_TRAIN.optimizer, ("sgd", "adam"))
BATCH = Setting("cl_batch", "Batch size", "int", D_TRAIN.batch_size, lo=1, hi=64, step=1)
TWIN = Setting("cl_twin", "Heatmap of run", "select", "unclipped", ("unclipped", "norm", "value"))
PLAY = Setting("cl_play", "Play training", "bool", False,
               help="The run's weight snapshots as an animation: heatmap, ‖∂L/∂h‖, eigenvalues, singular values, "
               "Lyapunov exponents at each kept step (evenly spaced, every clip event, the divergence).")  # fmt: skip
FRAME = player_ui.frame_setting("cl")
SETTINGS = (THRESH, STEPS, LR, OPT, BATCH, TWIN, PLAY, FRAME)


def outcome(run: dict) -> tuple[str, str]:
    """(how the run ended, how clipping acted) for one twin."""
    h = run["history"]
    state = f"diverged at step {run['diverged_at']}" if run["diverged_at"] is not None else (
        f"final loss {h['loss'].iloc[-1]:.4g}"
    )  # fmt: skip
    clip = "never clipped" if run["first_clip"] is None else (
        f"first clip at step {run['first_clip']}, {int(h['clipped'].sum())} clips"
    )  # fmt: skip
    return state, clip


def play_section(ctx: compute.PageContext, tcfg: TrainConfig, twin: str, runs: compute.Result) -> dict | None:
    """The training player for the run chosen above: Plotly animation frames, played in the browser.
    Returns what the HTML report needs to show the chosen frame (None while the player is off)."""
    st.subheader("Play training")
    if not S.page_setting(PLAY):
        st.caption(f"Switch on to step through the {TWIN_LABELS[twin]} run's weight snapshots.")
        return None
    if not layout.shows_classic_cell(ctx, "The player shows"):
        return None
    run = runs.value[twin]
    result = run["run"]
    if not result.snapshots:
        st.caption("This run kept no snapshots (snapshots = 0).")
        return None
    even = snapshot_count(tcfg, state_bytes(result.rnn, result.readout))
    st.caption(
        f"{len(result.snapshots)} snapshots kept of the {TWIN_LABELS[twin]} run ({len(run['history'])} steps): "
        f"up to {even} evenly spaced, every clip event (thinned evenly beyond {even}), and the divergence step."
    )
    label = f"{TWIN_LABELS[twin]} run"
    steps = [s.step for s in result.snapshots]
    shown = player_ui.show_frames(PAGE, ctx, runs, twin, steps, FRAME, "cl_play", TWIN_LABELS[twin])
    return dict(train_cfg=tcfg, source=twin, step=shown, label=label, prefix="cl_play")


def compare_section(ctx: compute.PageContext, runs: compute.Result, tcfg: TrainConfig, twin: str) -> None:
    """Compare mode: B's three twins, trained with the same training settings as A's (light in this rerun
    or a background job, as A's), the chosen twin's gradient norms of A and B on one axis, and every twin's
    numbers as A, B, B − A."""
    ctx_b = CU.context_b()
    if ctx_b is None:
        return
    if ctx_b.upload is not None:
        from bptt_core.analyses import sources

        st.info(f"B: {sources.training_start(ctx_b.cfg, ctx_b.upload)[1]}", icon=":material/info:")
    runs_b = JU.ask(compute.TWINS, ctx_b, tcfg, what="Training B's three twins")
    if runs_b is None:
        return
    table, (hist,) = compute.compare_clipping_view(runs, runs_b, twin, S.lecture())
    CU.metrics(PAGE, table, "cl_cmp_metrics")
    layout.show_figure(PAGE, hist, ctx)


@st.fragment
def body(ctx: compute.PageContext) -> None:
    """Everything below the header: its controls rerun only this part of the page."""
    c = layout.row(5)
    threshold = S.page_setting(THRESH, c[0])
    steps = S.page_setting(STEPS, c[1])
    lr = S.page_setting(LR, c[2], format="%.4f")
    opt = S.page_setting(OPT, c[3])
    batch = S.page_setting(BATCH, c[4])
    layout.export_format_toggle(PAGE)
    try:
        tcfg = TrainConfig(steps=steps, optimizer=opt, lr=lr, batch_size=batch, clip="none", clip_threshold=threshold)
    except ValueError as e:
        st.error(f"These training settings cannot be used: {e}")
        return
    if ctx.upload is not None:
        from bptt_core.analyses import sources

        st.info(sources.training_start(ctx.cfg, ctx.upload)[1], icon=":material/info:")

    # Light (the defaults: about a second): trained in this rerun. Heavier: a background job with progress,
    # an estimate and Cancel; over the per-request budget the page says what to lower (dashboard.budget).
    runs = JU.ask(compute.TWINS, ctx, tcfg)
    if runs is None:
        fit = max_steps_within(ctx.cfg, tcfg)
        if not fits(K.twins_cost(ctx.cfg, tcfg)) and 0 < fit < tcfg.steps:
            st.caption(f"With the other settings as they are, up to {fit} training steps fit the budget.")
        return

    m = st.columns(3)
    for col, (k, r) in zip(m, runs.value.items(), strict=True):
        state, clip = outcome(r)
        # A plain caption, not a metric delta: a clip count is not a change, and a delta draws an arrow badge.
        col.metric(TWIN_LABELS[k], state)
        col.caption(clip if k != "unclipped" else f"max ‖g‖ {r['history']['grad_norm'].max():.3g}")
    if any(r["diverged_at"] is not None for r in runs.value.values()):  # an outcome to show, not a failure of the page
        st.warning(
            "A run diverged: its loss or gradient became NaN/inf at the marked step, and it stopped there "
            "(no update is taken from a non-finite gradient). That is what clipping prevents.",
            icon=":material/error:",
        )
    for shown in compute.clipping_view(runs, tcfg, S.lecture()):
        layout.show_figure(PAGE, shown, ctx)
    twin = S.page_setting(TWIN)
    layout.show_figure(PAGE, compute.dh_view(runs, twin, S.lecture()), ctx)
    played = play_section(ctx, tcfg, twin, runs)
    compare_section(ctx, runs, tcfg, twin)
    player = {"player": played} if played else {}
    layout.exports(PAGE, ctx, SETTINGS, report_kw=dict(train_cfg=tcfg, **player))


ctx = layout.page_start(
    PAGE,
    "Gradient clipping",
    "Three runs from the same weights on the same batches: no clipping, clipping the global gradient norm "
    r"($g \leftarrow g \cdot c/\|g\|$ when $\|g\| > c$) and clipping each entry to $[-c, c]$ "
    "(Pascanu, Mikolov & Bengio 2013). They agree step for step until clipping first acts.",
)
if ctx is None:
    st.stop()
body(ctx)
