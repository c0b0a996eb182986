"""The method choice and flop counts (bptt_core.flow.plan): the default is the measured faster method, and
the split's count is what it saves over the chain."""

from __future__ import annotations

import pytest

from bptt_core.flow.plan import default_method

DEFAULT_GRID = [(50, 64, "chain"), (100, 64, "chain"), (200, 64, "chain"), (400, 64, "split"), (1000, 16, "chain")]
DEFAULT_GRID += [(1000, 32, "split"), (50, 128, "chain"), (100, 128, "split"), (20, 256, "chain"), (256, 256, "split")]


@pytest.mark.parametrize("T,S,expect", DEFAULT_GRID)
def test_default_method_is_the_measured_faster_one(T, S, expect):
    assert default_method("fro", T, S) == expect
    assert default_method(2, T, S) == "chain"  # the spectral norm needs every product formed


@pytest.mark.parametrize("T,S", [(T, S) for T in (1, 2, 20, 100, 400, 2000) for S in (8, 64, 256, 1024)])
def test_flow_cost_is_the_chain_cost_or_what_the_split_saves(T, S):
    from bptt_core.flow.plan import matrix_flops as flow_cost

    chain = 0.5 * T * T * S**3
    cost = flow_cost("fro", T, S)
    assert flow_cost(2, T, S) == chain  # the spectral norm always forms every product
    if default_method("fro", T, S) == "chain":
        assert cost == chain
    else:
        assert 0 < cost < chain  # the reason the split is the default there
