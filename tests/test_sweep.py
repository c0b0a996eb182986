"""Sweeps: the batched grid equals the single-network measures; theory and known facts; edge finder."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bptt_core.analyses.numbers import flow_matrix_of, lyapunov_of
from bptt_core.config import CELLS, ModelConfig
from bptt_core.flow import theory
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.sweeps import batched
from bptt_core.sweeps.batched import single_measures
from bptt_core.sweeps.boundary import edge_of_chaos, measured_boundary, theory_distance, theory_line, zero_crossings
from bptt_core.sweeps.grid import INT_AXES, SWEEP_CELLS, Axis, Network, SweepSpec
from bptt_core.sweeps.phase import summarise
from bptt_core.sweeps.run import sweep
from bptt_core.sweeps.table import whole_count
from dashboard.clicks import selected_point

# Every cell the sweep offers, the vanilla one with two activations; the others are refused by name.
CELL_CASES = [(c, a) for c in SWEEP_CELLS for a in (("tanh", "relu") if c == "rnn" else ("tanh",))]


@pytest.mark.parametrize("cell", [c for c in CELLS if c not in SWEEP_CELLS])
def test_cells_the_sweep_cannot_stack_are_refused_by_name(cell):
    with pytest.raises(ValueError, match="cell must be one of rnn, lstm, gru"):
        SweepSpec(ModelConfig(cell=cell), Axis.parse("gain:0.5:1.5:3", "--x"))


FLOW = ("lyapunov", "decay_rate", "memory_horizon", "sigma1_gamma")


def assert_same(a: float, b: float, tol: float, what: str):
    if math.isnan(b) or math.isinf(b):
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{what}: {a} != {b}"
    else:
        assert abs(a - b) <= tol * max(1.0, abs(b)), f"{what}: batched {a} vs alone {b}"


@pytest.mark.parametrize("cell,activation", CELL_CASES)
@pytest.mark.parametrize("small_chain", [True, False], ids=["stacked-chain", "page-chain"])
def test_batched_sweep_equals_single_networks_at_every_point(cell, activation, small_chain, monkeypatch):
    if not small_chain:  # every chain through the page's own log_norm_products
        monkeypatch.setattr(batched, "SMALL_CHAIN_BYTES", 0)
    base = ModelConfig(cell=cell, activation=activation, hidden_size=5, seq_len=14, init="gaussian")
    spec = SweepSpec(
        base, Axis("gain", 0.4, 2.8, 4), Axis("bias_scale", 0.0, 0.8, 2), seeds=2, measures=FLOW, chunk_size=5
    )
    table = sweep(spec)
    assert len(table) == 4 * 2 * 2
    assert list(table.columns) == ["gain", "bias_scale", "seed", *FLOW]
    for row in table.to_dict("records"):
        net = spec.network(seed=row["seed"], gain=row["gain"], bias_scale=row["bias_scale"])
        alone = single_measures(net, FLOW)
        assert_same(row["lyapunov"], alone["lyapunov"], 1e-12, f"lambda_1 at {row}")
        assert_same(row["decay_rate"], alone["decay_rate"], 1e-6, f"decay rate at {row}")  # float32 chains
        assert_same(row["memory_horizon"], alone["memory_horizon"], 0, f"horizon at {row}")
        assert_same(row["sigma1_gamma"], alone["sigma1_gamma"], 1e-12, f"sigma1 gamma at {row}")


@pytest.mark.parametrize("cell,activation", CELL_CASES)
def test_lyapunov_alone_blocked_path_equals_single_networks(cell, activation):
    # lambda_1 without the flow measures forms the step Jacobians a few steps at a time
    base = ModelConfig(cell=cell, activation=activation, hidden_size=6, seq_len=21, init="gaussian")
    spec = SweepSpec(base, Axis("gain", 0.5, 3.0, 3), Axis("input_scale", 0.0, 1.0, 2), seeds=2,
                       h0_scale=0.5, burn_in=3)  # fmt: skip
    for row in sweep(spec).to_dict("records"):
        net = spec.network(seed=row["seed"], gain=row["gain"], input_scale=row["input_scale"])
        assert_same(row["lyapunov"], single_measures(net, ("lyapunov",), burn_in=3)["lyapunov"], 1e-12, f"{row}")


def test_a_grid_point_with_the_pages_settings_is_the_pages_network():
    cfg = ModelConfig(cell="rnn", hidden_size=12, seq_len=40, init="gaussian", gain=1.3, seed=4)
    spec = SweepSpec(cfg, Axis("gain", 1.3, 1.3, 1), measures=("lyapunov", "decay_rate", "memory_horizon"))
    row = sweep(spec).iloc[0]
    L = flow_matrix_of(cfg)
    assert row["lyapunov"] == pytest.approx(lyapunov_of(cfg)[0], abs=1e-12)  # as the Spectrum page shows it
    assert row["decay_rate"] == pytest.approx(decay_rate(L), abs=1e-6)  # as the Gradient flow page shows it
    h = memory_horizon(L)
    assert (math.isnan(row["memory_horizon"]) and h is None) or row["memory_horizon"] == h


def test_initial_state_and_burn_in_enter_both_computations():
    base = ModelConfig(cell="gru", hidden_size=6, seq_len=30, init="gaussian")
    spec = SweepSpec(base, Axis("gain", 1.0, 3.0, 3), measures=("lyapunov",), h0_scale=1.0, burn_in=10)
    for row in sweep(spec).to_dict("records"):
        alone = single_measures(spec.network(seed=row["seed"], gain=row["gain"]), ("lyapunov",), burn_in=10)
        assert row["lyapunov"] == pytest.approx(alone["lyapunov"], abs=1e-12)


def test_hidden_size_and_seq_len_axes_mix_shapes_in_one_chunk():
    base = ModelConfig(cell="lstm", hidden_size=4, seq_len=10, init="gaussian")
    spec = SweepSpec(base, Axis("hidden_size", 3, 5, 3), Axis("seq_len", 8, 12, 2), measures=FLOW, chunk_size=6)
    table = sweep(spec)
    assert sorted(set(table["hidden_size"])) == [3, 4, 5] and sorted(set(table["seq_len"])) == [8, 12]
    for row in table.to_dict("records"):
        alone = single_measures(spec.network(seed=0, hidden_size=row["hidden_size"], seq_len=row["seq_len"]), FLOW)
        assert_same(row["lyapunov"], alone["lyapunov"], 1e-12, "lambda_1")
        assert_same(row["decay_rate"], alone["decay_rate"], 1e-6, "decay rate")


def test_trainability_is_the_final_loss_of_the_short_run():
    base = ModelConfig(cell="rnn", hidden_size=8, seq_len=12, init="gaussian")
    spec = SweepSpec(base, Axis("gain", 0.5, 1.5, 2), measures=("trainability",), train_steps=10)
    table = sweep(spec)
    from bptt_core.learning.training import TrainConfig, train

    cfg = ModelConfig(cell="rnn", hidden_size=8, seq_len=12, init="gaussian", gain=0.5, task="adding")
    loss = train(cfg, TrainConfig(steps=10, lr=0.01, batch_size=16, seed=0)).history["loss"].to_numpy()
    assert table["trainability"].iloc[0] == pytest.approx(loss[-1:].mean(), rel=1e-12)


# -- known facts ------------------------------------------------------------------------------------


def test_linear_network_lyapunov_is_log10_of_the_spectral_radius():
    # orthogonal W scaled to rho: ||W^t e_1|| = rho^t, so lambda_1 = log10 rho up to the float32
    # rounding of the stored weights (rho itself moves by ~1e-8)
    base = ModelConfig(cell="rnn", activation="linear", hidden_size=16, seq_len=300, init="orthogonal")
    spec = SweepSpec(base, Axis("spectral_radius", 0.5, 1.5, 5), seeds=2, measures=("lyapunov",))
    table = sweep(spec)
    np.testing.assert_allclose(table["lyapunov"], np.log10(table["spectral_radius"]), atol=1e-7)
    # Gaussian W: the same limit up to the transient of the eigenvector mix (O(1/T))
    spec = SweepSpec(replace_init(base, "gaussian", 2000), Axis("spectral_radius", 0.6, 1.4, 3), measures=("lyapunov",))
    table = sweep(spec)
    np.testing.assert_allclose(table["lyapunov"], np.log10(table["spectral_radius"]), atol=2e-3)


def replace_init(cfg, init, T):
    from dataclasses import replace

    return replace(cfg, init=init, seq_len=T)


def test_tanh_with_small_gain_is_ordered_everywhere():
    base = ModelConfig(cell="rnn", activation="tanh", hidden_size=32, seq_len=60, init="gaussian")
    spec = SweepSpec(
        base,
        Axis("gain", 0.05, 0.4, 4),
        Axis("input_scale", 0.0, 3.0, 4),
        seeds=2,
        measures=("lyapunov", "sigma1_gamma"),
        bias_scale=0.5,
        h0_scale=1.0,
    )
    table = sweep(spec)
    assert (table["sigma1_gamma"] < 1).all()  # Pascanu et al.: contraction guaranteed
    assert (table["lyapunov"] < 0).all()


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


# -- theory -----------------------------------------------------------------------------------------


def test_mean_field_fixed_point_and_chi1():
    assert theory.q_star(0.8) == 0.0 and theory.chi1(0.8) == pytest.approx(0.64)  # undriven, ordered: q* = 0
    for g, iv, bv in [(1.5, 0.0, 0.0), (2.0, 1.0, 0.1), (0.5, 0.3, 0.0)]:
        q = theory.q_star(g, iv, bv)
        # the fixed point, checked with an independent expectation (dense Riemann sum)
        z = np.linspace(-12, 12, 200_001)
        w = np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
        assert g * g * np.sum(w * np.tanh(math.sqrt(q) * z) ** 2) + iv + bv == pytest.approx(q, rel=1e-9)
        chi = g * g * np.sum(w / np.cosh(math.sqrt(q) * z) ** 4)
        assert theory.chi1(g, iv, bv) == pytest.approx(chi, rel=1e-9)
    g = theory.boundary_gain(0.5, 0.2)
    assert theory.chi1(g, 0.5, 0.2) == pytest.approx(1.0, abs=1e-9)
    assert theory.boundary_gain(0.0, 0.0) == 1.0
    assert theory.memory_time(theory.chi1(0.5)) == pytest.approx(-1 / math.log(0.25))
    assert theory.predicted_decay_rate(0.5) == pytest.approx(0.5 * math.log10(0.25))


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


# -- bad input --------------------------------------------------------------------------------------

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


def test_summary_gives_mean_and_spread_over_seeds():
    t = pd.DataFrame({"gain": [1, 1, 2, 2], "seed": [0, 1, 0, 1], "lyapunov": [-1.0, -3.0, 1.0, 1.0]})
    s = summarise(t, ["gain"], "lyapunov")
    assert s["mean"].tolist() == [-2.0, 1.0] and s["std"].tolist() == [pytest.approx(math.sqrt(2)), 0.0]
    assert zero_crossings([1, 2], [-2.0, 1.0]) == [pytest.approx(1 + 2 / 3)]


@pytest.mark.parametrize(
    "name, lo, hi, points, count",
    [("gain", 0.5, 3.0, 12, 12), ("gain", 1.0, 1.0, 12, 1), ("hidden_size", 8, 64, 12, 9), ("seq_len", 10, 20, 30, 11)],
)
def test_integer_axes_get_whole_number_steps(name, lo, hi, points, count):
    n = whole_count(name, lo, hi, points)
    assert n == count
    if name in INT_AXES and n > 1:
        assert (hi - lo) % (n - 1) == 0


def test_a_clicked_point_is_read_back_in_the_axes_units():
    event = {"selection": {"points": [{"x": 1.25, "y": 31.6}]}}
    assert selected_point(event, ["gain", "hidden_size"]) == {"gain": 1.25, "hidden_size": 32}
    assert selected_point({"selection": {"points": []}}, ["gain"]) is None
    assert selected_point(None, ["gain"]) is None
