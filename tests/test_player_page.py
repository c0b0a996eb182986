"""The training player on the Clipping page: for the chosen twin, one Plotly animation frame per weight
snapshot the run kept, each naming its training step and loss; the play button and the slider are in the
figure (they animate in the browser, no server rerun per frame); the CSV is player.frames_table."""

from __future__ import annotations

import math

import pytest
from test_app import FAST_CLIP, chart_keys, chart_spec, navigation_mode, open_details, open_page  # noqa: F401 - the fixture

from bptt_core.config import ModelConfig
from bptt_core.learning.training import CLIPPING_STORY, TrainConfig, twin_runs

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
