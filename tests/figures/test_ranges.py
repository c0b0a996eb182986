"""Shared ranges (bptt_core.figures.ranges): flat or empty matrices still get a usable range."""

from __future__ import annotations

import numpy as np
import pytest

from bptt_core.figures import ranges


def test_shared_range_of_flat_or_empty_matrices_is_a_usable_range():
    assert ranges.shared_range(np.zeros((2, 2)), np.zeros((3, 3))) == (-0.5, 0.5)
    assert ranges.shared_range(np.full((2, 2), np.nan)) == (-0.5, 0.5)
    with pytest.raises(ValueError, match="at least one"):
        ranges.shared_range()
