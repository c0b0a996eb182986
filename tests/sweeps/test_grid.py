"""The sweep's grid (bptt_core.sweeps.grid): bad axes and cells name themselves; a grid point with the page's
settings is the page's network."""

from __future__ import annotations

import math

import pytest

from bptt_core.analyses.numbers import flow_matrix_of, lyapunov_of
from bptt_core.config import CELLS, ModelConfig
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.sweeps.grid import SWEEP_CELLS, Axis, SweepSpec
from bptt_core.sweeps.run import sweep


@pytest.mark.parametrize("cell", [c for c in CELLS if c not in SWEEP_CELLS])
def test_cells_the_sweep_cannot_stack_are_refused_by_name(cell):
    with pytest.raises(ValueError, match="cell must be one of rnn, lstm, gru"):
        SweepSpec(ModelConfig(cell=cell), Axis.parse("gain:0.5:1.5:3", "--x"))


def test_a_grid_point_with_the_pages_settings_is_the_pages_network():
    cfg = ModelConfig(cell="rnn", hidden_size=12, seq_len=40, init="gaussian", gain=1.3, seed=4)
    spec = SweepSpec(cfg, Axis("gain", 1.3, 1.3, 1), measures=("lyapunov", "decay_rate", "memory_horizon"))
    row = sweep(spec).iloc[0]
    L = flow_matrix_of(cfg)
    assert row["lyapunov"] == pytest.approx(lyapunov_of(cfg)[0], abs=1e-12)  # as the Spectrum page shows it
    assert row["decay_rate"] == pytest.approx(decay_rate(L), abs=1e-6)  # as the Gradient flow page shows it
    h = memory_horizon(L)
    assert (math.isnan(row["memory_horizon"]) and h is None) or row["memory_horizon"] == h


BAD = [
    (lambda: Axis.parse("gain:0.5:3:0"), "empty range for gain"),
    (lambda: Axis.parse("temperature:0:1:3"), "unknown setting 'temperature'"),
    (lambda: Axis.parse("gain:0.5:3"), "SETTING:START:STOP:COUNT"),
    (lambda: Axis.parse("hidden_size:8:64:4"), "hidden_size takes whole numbers"),
    (lambda: SweepSpec(ModelConfig(), Axis("gain", 0, 2, 3)), "gain must be in"),
    (lambda: SweepSpec(ModelConfig(), Axis("gain", 1, 2, 3), measures=("entropy",)), "unknown measure 'entropy'"),
    (
        lambda: SweepSpec(ModelConfig(), Axis("gain", 1, 2, 1000), Axis("bias_scale", 0, 1, 101)),
        "too many networks",
    ),
]


@pytest.mark.parametrize("make,message", BAD, ids=[m for _, m in BAD])
def test_bad_settings_name_the_setting(make, message):
    with pytest.raises(ValueError, match=message):
        make()
