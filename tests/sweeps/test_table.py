"""The sweep table (bptt_core.sweeps.table): integer axes get whole-number steps."""

from __future__ import annotations

import pytest

from bptt_core.sweeps.grid import INT_AXES
from bptt_core.sweeps.table import whole_count


@pytest.mark.parametrize(
    "name, lo, hi, points, count",
    [("gain", 0.5, 3.0, 12, 12), ("gain", 1.0, 1.0, 12, 1), ("hidden_size", 8, 64, 12, 9), ("seq_len", 10, 20, 30, 11)],
)
def test_integer_axes_get_whole_number_steps(name, lo, hi, points, count):
    n = whole_count(name, lo, hi, points)
    assert n == count
    if name in INT_AXES and n > 1:
        assert (hi - lo) % (n - 1) == 0
