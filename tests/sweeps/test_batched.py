"""The batched sweep (bptt_core.sweeps.batched): the grid equals the single-network measures at every point,
and known facts hold (linear networks, small-gain tanh, trainability)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bptt_core.config import ModelConfig
from bptt_core.sweeps import batched
from bptt_core.sweeps.batched import single_measures
from bptt_core.sweeps.grid import SWEEP_CELLS, Axis, SweepSpec
from bptt_core.sweeps.run import sweep

# Every cell the sweep offers, the vanilla one with two activations; the others are refused by name.
CELL_CASES = [(c, a) for c in SWEEP_CELLS for a in (("tanh", "relu") if c == "rnn" else ("tanh",))]

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
