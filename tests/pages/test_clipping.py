"""The Gradient clipping page (pages/clipping.py) in AppTest: its training player and compare histories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bptt_core.config import ModelConfig
from bptt_core.learning.training import CLIPPING_STORY, TrainConfig, twin_runs
from tests.helpers.apptest import (
    FAST_CLIP,
    chart_keys,
    chart_spec,
    navigation_mode,  # noqa: F401 - the fixture
    open_details,
    open_page,
)
from tests.helpers.compare_pages import OTHER_B, metrics, open_cmp, traces, ys

PLAYER_KEYS = ("cl_play_heatmap", "cl_play_dh", "cl_play_eig", "cl_play_sv", "cl_play_lyap")


def page_runs(**kw):
    """The twins the page trains for FAST_CLIP (its other settings at their defaults)."""
    d = CLIPPING_STORY
    tcfg = TrainConfig(steps=int(FAST_CLIP["cl_steps"]), optimizer=d.optimizer, lr=d.lr,
                       batch_size=int(FAST_CLIP["cl_batch"]), clip="none", clip_threshold=d.clip_threshold)  # fmt: skip
    return twin_runs(ModelConfig(**kw), tcfg)


def test_the_player_is_off_until_asked_for():
    at = open_page("clipping")
    assert not at.exception and not set(PLAYER_KEYS) & chart_keys(at)


@pytest.mark.parametrize("twin", ["unclipped", "norm"])
def test_the_player_has_one_frame_per_snapshot_with_its_step_and_loss(twin):
    at = open_page("clipping", {"cl_play": "true", "cl_twin": twin})
    assert not at.exception, [e.value for e in at.exception]
    assert set(PLAYER_KEYS) <= chart_keys(at), chart_keys(at)
    snaps = page_runs()[twin].snapshots
    assert snaps
    for key in PLAYER_KEYS:
        spec = chart_spec(at, key)
        frames = spec["frames"]
        assert len(frames) == len(snaps), key
        for fr, snap in zip(frames, snaps, strict=True):
            title = fr["layout"]["title"]["text"]
            loss = f"{snap.loss:.4g}" if math.isfinite(snap.loss) else str(snap.loss)
            assert f"training step {snap.step}, loss {loss}" in title, (key, title)
        (slider,) = spec["layout"]["sliders"]
        assert [s["label"] for s in slider["steps"]] == [str(s.step) for s in snaps]
        assert [s["args"][0] for s in slider["steps"]] == [[f["name"]] for f in frames]
        play, pause = spec["layout"]["updatemenus"][0]["buttons"]
        assert play["method"] == "animate" and play["args"][0] is None and "Play" in play["label"]
        assert pause["method"] == "animate"
    # every player figure has its CSV: the frames table
    open_details(at, PLAYER_KEYS)
    for key in PLAYER_KEYS:
        assert any(b.proto.id.endswith(f"{key}_csv") for b in at.get("download_button")), key


# == Compare mode: A's and B's histories on one axis =========================================================


def test_clipping_histories_of_A_and_B_on_one_axis():
    at = open_cmp("clipping", OTHER_B)
    tr = traces(at, "cl_cmp_gradnorm")
    assert tr["A"].get("yaxis", "y") == tr["B"].get("yaxis", "y") == "y"
    assert not np.allclose(ys(tr["A"]), ys(tr["B"]))
    df = metrics(at)
    assert set(df["run"]) == {"unclipped", "norm", "value"}
    final = df[df["metric"] == "final loss"]
    np.testing.assert_allclose(final["B − A"], final["B"] - final["A"], rtol=1e-12)
