"""The measured boundary (bptt_core.sweeps.boundary): against mean-field theory at large H, the theory
line's applicability, the edge-of-chaos finder."""

from __future__ import annotations

import pytest

from bptt_core.config import ModelConfig
from bptt_core.flow import theory
from bptt_core.sweeps.batched import single_measures
from bptt_core.sweeps.boundary import edge_of_chaos, measured_boundary, theory_distance, theory_line
from bptt_core.sweeps.grid import Axis, Network, SweepSpec
from bptt_core.sweeps.run import sweep


def test_driven_tanh_boundary_matches_mean_field_at_large_H():
    # input variance 1: the mean field puts chi_1 = 1 at g = 1.8555; H = 256 is within 0.05 of it
    base = ModelConfig(cell="rnn", hidden_size=256, seq_len=300, init="gaussian")
    spec = SweepSpec(base, Axis("gain", 1.4, 2.4, 6), seeds=2, measures=("lyapunov",), burn_in=100)
    table = sweep(spec)
    line = theory_line(spec)
    assert line.frame[line.gain_axis].iloc[0] == pytest.approx(theory.boundary_gain(1.0, 0.0))
    d = theory_distance(table, line)
    assert d["rows"] == 1 and d["mean"] < 0.05, d


@pytest.mark.slow
def test_autonomous_tanh_boundary_approaches_g_1_at_large_H():
    # Undriven, from a random state: ordered (lambda_1 < 0) below g = 1; above it, limit cycles and
    # chaos keep lambda_1 at or above 0, so the ordered phase ends where lambda_1 rises to ~0.
    base = ModelConfig(cell="rnn", hidden_size=256, seq_len=500, init="gaussian")
    spec = SweepSpec(
        base, Axis("gain", 0.8, 1.2, 5), seeds=2, measures=("lyapunov",), input_scale=0.0, h0_scale=1.0, burn_in=250
    )
    table = sweep(spec)
    edge = measured_boundary(table, "gain", None, level=-0.002)["gain"].iloc[0]
    assert abs(edge - theory.boundary_gain(0.0, 0.0)) < 0.05, edge
    assert (table.loc[table["gain"] <= 0.9, "lyapunov"] < -0.01).all()


def test_theory_line_says_why_when_it_does_not_apply():
    base = ModelConfig(cell="lstm", hidden_size=4, seq_len=5, init="gaussian")
    line = theory_line(SweepSpec(base, Axis("gain", 0.5, 2, 2)))
    assert line.frame is None and "tanh" in line.reason
    base = ModelConfig(cell="rnn", hidden_size=4, seq_len=5, init="gaussian")
    line = theory_line(SweepSpec(base, Axis("gain", 0.5, 2, 2), Axis("input_scale", 0, 2, 3)))
    assert list(line.frame.columns) == ["input_scale", "gain"] and line.frame["gain"].iloc[0] == 1.0
    assert line.frame["gain"].is_monotonic_increasing  # more drive: more gain needed for chaos


# -- edge of chaos ----------------------------------------------------------------------------------


def test_edge_finder_gain_has_lambda1_within_0_005():
    net = Network(ModelConfig(cell="rnn", hidden_size=64, seq_len=200, init="gaussian", seed=3))
    edge = edge_of_chaos(net)
    assert abs(edge.lyapunov) <= 0.005
    lam = single_measures(Network(ModelConfig(**{**net.cfg.to_dict(), "gain": edge.gain})), ("lyapunov",))
    assert abs(lam["lyapunov"]) <= 0.005  # checked again, the Spectrum page's way
    assert edge.bracket[0] <= edge.gain <= edge.bracket[1]


def test_edge_finder_refuses_a_range_without_a_crossing():
    net = Network(ModelConfig(cell="rnn", hidden_size=16, seq_len=50, init="gaussian"))
    with pytest.raises(ValueError, match="gain: lambda_1 does not cross 0"):
        edge_of_chaos(net, lo=0.1, hi=0.3)
