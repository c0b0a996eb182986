"""Running a sweep (bptt_core.sweeps.run): local threads give the same bits as one."""

from __future__ import annotations

import pandas as pd

from bptt_core.config import ModelConfig
from bptt_core.sweeps.grid import Axis, SweepSpec
from bptt_core.sweeps.run import assemble, run_local


def test_local_threads_give_the_same_bits_as_one():
    spec = SweepSpec(ModelConfig(hidden_size=12, seq_len=30, init="gaussian"), Axis("gain", 0.5, 2.5, 8),
                       measures=("lyapunov", "decay_rate"), chunk_size=2)  # fmt: skip
    one = assemble(spec, list(run_local(spec, workers=1).values()))
    many = assemble(spec, list(run_local(spec, workers=3).values()))
    pd.testing.assert_frame_equal(one, many, check_exact=True)
