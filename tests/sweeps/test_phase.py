"""The phase map's summary (bptt_core.sweeps.phase): mean and spread over seeds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bptt_core.sweeps.boundary import zero_crossings
from bptt_core.sweeps.phase import summarise


def test_summary_gives_mean_and_spread_over_seeds():
    t = pd.DataFrame({"gain": [1, 1, 2, 2], "seed": [0, 1, 0, 1], "lyapunov": [-1.0, -3.0, 1.0, 1.0]})
    s = summarise(t, ["gain"], "lyapunov")
    assert s["mean"].tolist() == [-2.0, 1.0] and s["std"].tolist() == [pytest.approx(math.sqrt(2)), 0.0]
    assert zero_crossings([1, 2], [-2.0, 1.0]) == [pytest.approx(1 + 2 / 3)]
