"""The training player on a page: its URL-bound settings, the frame a link opens at, and the animated
figures (bptt_core.learning.player's frames as Plotly animation frames: play and the slider run in the browser,
no server rerun per frame).

Three pages play a run: Clipping (the chosen twin), Truncated BPTT (a TBPTT(k1, k2) training run) and
Gradient flow (a plain full-BPTT run). Each page's settings carry its prefix (``cl_``, ``tb_``, ``gf_``):
``<prefix>_play`` switches the player on, ``<prefix>_frame`` is the training step the figures open at (the
slider's active step: a copied link and the HTML report show that frame), and the two pages that train
their own run have ``<prefix>_play_steps`` and ``<prefix>_play_lr``.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from bptt_core.learning.training import MAX_LR, MAX_STEPS

from . import compute, layout
from . import jobs_ui as JU
from . import settings as S
from .settings import Setting

PLAY_STEPS_DEFAULT = 60  # a played run is one run at a page's defaults: small, so it trains in the rerun
PLAY_LR_DEFAULT = 0.003  # at the default model and task: the loss falls 205 -> 3 in 60 steps (0.01 diverges)


def frame_setting(prefix: str) -> Setting:
    return Setting(
        f"{prefix}_frame", "Open at training step", "int", 0, lo=0, hi=MAX_STEPS, step=1,
        help="The frame the player's figures open at (and the HTML report shows): the kept snapshot nearest "
        "to this training step. ▶ Play and the figures' own slider move through every frame in your browser.",
    )  # fmt: skip


@dataclass(frozen=True)
class PlayedRunSettings:
    """The URL-bound settings of a page's own played run."""

    play: Setting
    steps: Setting
    lr: Setting
    frame: Setting

    @property
    def all(self) -> tuple[Setting, ...]:
        return (self.play, self.steps, self.lr, self.frame)


def played_run_settings(prefix: str, what: str) -> PlayedRunSettings:
    """``<prefix>_play`` (off by default: the run trains only when asked for), ``<prefix>_play_steps``,
    ``<prefix>_play_lr``, ``<prefix>_frame``."""
    return PlayedRunSettings(
        Setting(f"{prefix}_play", "Play training", "bool", False,
                help=f"Train {what} and play its weight snapshots: heatmap, ‖∂L/∂h‖, eigenvalues with their paths, "
                "singular values and Lyapunov exponents at each kept step (evenly spaced, and the divergence)."),
        Setting(f"{prefix}_play_steps", "Training steps", "int", PLAY_STEPS_DEFAULT, lo=10, hi=1000, step=10),
        Setting(f"{prefix}_play_lr", "Learning rate", "float", PLAY_LR_DEFAULT, lo=0.0001, hi=MAX_LR, step=0.001),
        frame_setting(prefix),
    )  # fmt: skip


def show_frames(
    page: str,
    ctx: compute.PageContext,
    run: compute.Result,
    source: str,
    steps: list[int],
    frame: Setting,
    prefix: str,
    label: str,
) -> int:
    """The player's figures for ``run`` (the Clipping twins, ``source`` the twin; or the page's played run,
    ``source`` the page's name), opened at the kept snapshot nearest to the page's ``frame`` setting;
    returns that training step."""  # fmt: skip
    from bptt_core.learning.player import frame_at

    asked = S.page_setting(frame)
    index = frame_at(steps, asked)
    if steps[index] != asked:
        st.caption(f"Training step {asked} was not kept; the figures open at the nearest kept step, {steps[index]}.")
    with st.spinner(f"Measuring {len(steps)} snapshots…"):
        panels = compute.player_view(run, source, S.lecture(), index, prefix, label)
    for shown in panels:
        layout.show_figure(page, shown, ctx)
    return steps[index]


def played_run_section(
    page: str, ctx: compute.PageContext, settings: PlayedRunSettings, tcfg_of, what: str, label: str
) -> dict | None:
    """A page's own training run and its player, when ``<prefix>_play`` is on. ``tcfg_of(steps, lr)``
    builds the run's TrainConfig (ValueError: said in the page). Light runs train in this rerun; heavier
    ones in the background with progress, an estimate and Cancel (bptt_core.analyses.cost.played_training_cost).
    Returns what the HTML report needs to show the chosen frame (None while the player is off or waiting)."""
    prefix = settings.play.key  # the figures: <prefix>_heatmap, ... (gf_play_heatmap beside gf_heatmap)
    st.subheader("Play training")
    c = layout.row(3)
    on = S.page_setting(settings.play, c[0])
    if not on:
        st.caption(f"Switch on to train {what} and step through its weight snapshots.")
        return None
    steps = S.page_setting(settings.steps, c[1])
    lr = S.page_setting(settings.lr, c[2], format="%.4f")
    if not layout.shows_classic_cell(ctx, "The player shows"):
        return None
    try:
        tcfg = tcfg_of(steps, lr)
    except ValueError as e:
        st.error(f"These training settings cannot be used: {e}")
        return None
    out = JU.ask(compute.PLAYED_RUN, ctx, tcfg, slot=f"{page}_played_run", what=f"Training {what}")
    if out is None:
        return None
    run = out.value["run"]
    if not run.snapshots:
        st.caption("This run kept no snapshots.")
        return None
    h = run.history
    ended = (f"diverged at step {run.diverged_at}" if run.diverged_at is not None
             else f"final loss {h['loss'].iloc[-1]:.4g} (first {h['loss'].iloc[0]:.4g})")  # fmt: skip
    st.caption(
        f"{label}: {len(h)} steps, {ended}; {len(run.snapshots)} snapshots kept "
        f"(up to {tcfg.snapshots} evenly spaced, and the divergence step)."
    )
    shown = show_frames(page, ctx, out, page, [s.step for s in run.snapshots], settings.frame, prefix, label)
    return dict(train_cfg=tcfg, source="run", step=shown, label=label, prefix=prefix)
