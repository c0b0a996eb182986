"""Training figures (bptt_core.figures.training): the gradient-norm history marks the threshold, the clips
and the divergence; identical twins stay visible."""

from __future__ import annotations

import numpy as np

from tests.helpers.figures import _every_figure, arr


def test_gradient_norm_history_marks_threshold_clips_and_divergence():
    _, fig = None, _every_figure()["grad norms"]
    assert any(s.type == "line" and s.y0 == 0.0 for s in fig.layout.shapes)  # log10(c = 1)
    clips = [t for t in fig.data if t.name and "clip fired" in t.name]
    assert len(clips) == 2 and len(clips[0].x) == 2
    assert any("diverged" in a.text for a in fig.layout.annotations)


def test_clip_events_contrast_with_the_curves_and_identical_twins_stay_visible():
    fig = _every_figure()["grad norms"]  # "unclipped" and "norm" share one history: identical twins
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2 and np.array_equal(arr(lines[0].y), arr(lines[1].y), equal_nan=True)
    assert lines[0].line.dash != lines[1].line.dash and lines[0].line.width > lines[1].line.width
    curve_colours = {t.line.color for t in lines}
    for t in (t for t in fig.data if t.mode == "markers"):
        assert t.marker.color not in curve_colours and t.marker.line.color not in curve_colours
    first = [s for s in fig.layout.shapes if s.line.dash == "dashdot"]
    assert len(first) == 1 and first[0].x0 == 1  # the history's first clipped step
    assert any("first clip: step 1" in a.text for a in fig.layout.annotations)
