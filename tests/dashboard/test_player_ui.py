"""The training player on Truncated BPTT (a TBPTT(k1, k2) run, tb_play) and Gradient flow (a plain
full-BPTT run, gf_play), and the chosen frame on all three player pages (cl_frame, tb_frame, gf_frame):
the run the page plays is the library's run for those settings, every frame names its training step and
loss, the figures open at the chosen frame (the slider's active step), a copied link reopens it, the HTML
report shows it, and a bad value in the URL falls back with a warning."""

from __future__ import annotations

import gc
import math
import re

import pytest

from bptt_core.config import ModelConfig
from bptt_core.learning.training import CLIPPING_STORY, TrainConfig, train, twin_runs
from dashboard import player_ui
from tests.helpers.apptest import (
    FAST_CLIP,
    chart_keys,
    chart_spec,
    navigation_mode,  # noqa: F401 - the fixture
    open_details,
    open_page,
)
from tests.helpers.player_pages import PLAYERS, SMALL, frame_titles

FIGS = ("heatmap", "dh", "eig", "sv", "lyap")


def library_run(page: str):
    """The run the page trains, by the library (the page's other settings at their defaults)."""
    cfg = ModelConfig(hidden_size=6, seq_len=12)
    lr = player_ui.PLAY_LR_DEFAULT
    if page == "truncation":
        return train(cfg, TrainConfig(steps=10, lr=lr, k1=3, k2=4))
    return train(cfg, TrainConfig(steps=10, lr=lr))


@pytest.mark.parametrize("page", list(PLAYERS))
def test_the_player_is_off_until_asked_for(page):
    at = open_page(page, SMALL)
    assert not at.exception, [e.value for e in at.exception]
    prefix = PLAYERS[page][1]
    assert not {f"{prefix}_{f}" for f in FIGS} & chart_keys(at)
    assert any("Switch on to train" in c.value for c in at.caption)


@pytest.mark.parametrize("page", list(PLAYERS))
def test_the_pages_run_is_played_frame_by_frame_with_its_step_and_loss(page):
    query, prefix = PLAYERS[page]
    at = open_page(page, query)
    assert not at.exception, [e.value for e in at.exception]
    assert {f"{prefix}_{f}" for f in FIGS} <= chart_keys(at), chart_keys(at)
    run = library_run(page)
    assert run.snapshots
    for f in FIGS:
        spec = chart_spec(at, f"{prefix}_{f}")
        assert len(spec["frames"]) == len(run.snapshots)
        for title, snap in zip(frame_titles(spec), run.snapshots, strict=True):
            loss = f"{snap.loss:.4g}" if math.isfinite(snap.loss) else str(snap.loss)
            assert f"training step {snap.step}, loss {loss}" in title, (f, title)
        (slider,) = spec["layout"]["sliders"]
        assert [s["label"] for s in slider["steps"]] == [str(s.step) for s in run.snapshots]
        assert slider.get("active", 0) == 0  # no frame chosen: the first
        play = spec["layout"]["updatemenus"][0]["buttons"][0]
        assert play["method"] == "animate" and play["args"][0] is None
        open_details(at, [f"{prefix}_{f}"])
        assert any(b.proto.id.endswith(f"{prefix}_{f}_csv") for b in at.get("download_button"))
    h = run.history
    assert any(f"final loss {h['loss'].iloc[-1]:.4g}" in c.value for c in at.caption)


def _active_and_title(at, key: str) -> tuple[int, str]:
    spec = chart_spec(at, key)
    return spec["layout"]["sliders"][0].get("active", 0), spec["layout"]["title"]["text"]


@pytest.mark.parametrize("page", [*PLAYERS, "clipping"])
def test_the_chosen_frame_opens_the_figures_there_and_a_copied_link_reopens_it(page):
    if page == "clipping":
        query, prefix, frame_key = {"cl_play": "true"}, "cl_play", "cl_frame"
        run = twin_runs(ModelConfig(), TrainConfig(steps=int(FAST_CLIP["cl_steps"]), optimizer=CLIPPING_STORY.optimizer,
                        lr=CLIPPING_STORY.lr, batch_size=int(FAST_CLIP["cl_batch"]),
                        clip_threshold=CLIPPING_STORY.clip_threshold))["unclipped"]  # fmt: skip
    else:
        (query, prefix), frame_key, run = PLAYERS[page], PLAYERS[page][1].replace("_play", "_frame"), library_run(page)
    steps = [s.step for s in run.snapshots]
    i = len(steps) - 2
    at = open_page(page, {**query, frame_key: str(steps[i])})
    assert not at.exception, [e.value for e in at.exception]
    for f in FIGS:
        active, title = _active_and_title(at, f"{prefix}_{f}")
        assert active == i and f"training step {steps[i]}, loss" in title, (f, active, title)
    link = next(c.value for c in at.code if "http" in c.value)
    assert f"{frame_key}={steps[i]}" in link
    # the link, opened again: the same frame
    params = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))
    again = open_page(page, {k: v.replace("%2C", ",") for k, v in params.items()})
    assert _active_and_title(again, f"{prefix}_heatmap") == _active_and_title(at, f"{prefix}_heatmap")
    # a step that was not kept opens the nearest kept one, and says so
    between = steps[i] + 1
    if between not in steps:
        at = open_page(page, {**query, frame_key: str(between)})
        assert _active_and_title(at, f"{prefix}_heatmap")[0] in (i, i + 1)
        assert any(f"Training step {between} was not kept" in c.value for c in at.caption)


def report_html(at, page: str) -> str:
    """Click the page's 'Build the HTML report' and read the file its download button serves."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    at.button(key=f"{page}_report").click().run()
    assert not at.exception, [e.value for e in at.exception]
    url = next(b.proto.url for b in at.get("download_button") if "HTML" in b.proto.label)
    file_id = url.rsplit("/", 1)[-1].split(".")[0]
    for store in (o for o in gc.get_objects() if isinstance(o, MemoryMediaFileStorage)):
        try:
            return store.get_file(file_id).content.decode()
        except Exception:  # noqa: BLE001 - another test's storage
            continue
    raise AssertionError(f"no stored file {url}")


@pytest.mark.parametrize("page", list(PLAYERS))
def test_the_html_report_holds_the_players_chosen_frame(page):
    (query, prefix), run = PLAYERS[page], library_run(page)
    step = run.snapshots[2].step
    at = open_page(page, {**query, prefix.replace("_play", "_frame"): str(step)})
    html = report_html(at, page)
    assert re.search(rf"Play training: [^<]*, training step {step}<", html), re.findall(r"Play training[^<]*", html)
    assert f"training step {step}, loss {run.snapshots[2].loss:.4g}" in html
    assert html.count('"sliders"') >= 5


@pytest.mark.parametrize("page", list(PLAYERS))
@pytest.mark.parametrize("bad", ["inf", "-3", "banana", "1e400", "2.5"])
def test_bad_player_values_in_the_url_fall_back_with_a_warning(page, bad):
    query, prefix = PLAYERS[page]
    p = prefix.removesuffix("_play")
    keys = (f"{p}_play_steps", f"{p}_play_lr", f"{p}_frame")
    at = open_page(page, {**query, **dict.fromkeys(keys, bad)})
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    for key in keys:
        if key.endswith("_lr") and bad == "2.5":  # a learning rate of 2.5 is in range
            continue
        assert any(f"**{key}**" in w and "falls back to the default" in w for w in warnings), (key, warnings)


@pytest.mark.parametrize("page", [*PLAYERS, "clipping"])
def test_choosing_another_frame_retrains_and_remeasures_nothing(page):
    """The frame is a view of the run: the page reopens the figures there from the frames it has."""
    from dashboard import compute

    if page == "clipping":
        query, prefix, frame_key = {"cl_play": "true"}, "cl_play", "cl_frame"
    else:
        (query, prefix), frame_key = PLAYERS[page], PLAYERS[page][1].replace("_play", "_frame")
    at = open_page(page, query)
    assert not at.exception, [e.value for e in at.exception]
    steps = [int(s["label"]) for s in chart_spec(at, f"{prefix}_heatmap")["layout"]["sliders"][0]["steps"]]
    before = dict(compute.COMPUTED)
    at.session_state[frame_key] = steps[-1]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert dict(compute.COMPUTED) == before  # no run trained, no frame measured again
    assert _active_and_title(at, f"{prefix}_heatmap")[0] == len(steps) - 1
