"""The cost model (bptt_core.analyses.cost): estimates against measurements, how cost grows with the
settings, and the constants it shares with the numerics.

The estimates are CPU seconds of one core (bench/bench_cost.py calibrates them); measured here as
CPU time of this process on a small grid, the check allows twice bench's accepted factor, since the
test machine is shared. What must hold whatever the machine: the formulas scale with the settings
(an order of magnitude off fails)."""

from __future__ import annotations

import time

import pytest

from bptt_core.analyses import cost as C
from bptt_core.analyses.numbers import flow_matrix_of
from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig, train, twin_runs
from dashboard import budget as B

FACTOR = 2 * C.ACCURACY_FACTOR


def cpu(fn) -> float:
    fn()  # warm-up
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


GRID = [  # (what, estimate, run): small sizes, spread over the formulas' terms
    ("flow fro", lambda: C.flow_cost(ModelConfig(hidden_size=64, seq_len=120)),
     lambda: flow_matrix_of(ModelConfig(hidden_size=64, seq_len=120))),
    ("flow spectral", lambda: C.flow_cost(ModelConfig(hidden_size=48, seq_len=60), 2),
     lambda: flow_matrix_of(ModelConfig(hidden_size=48, seq_len=60), 2)),
    ("train rnn", lambda: C.training_cost(ModelConfig(hidden_size=32, seq_len=40), TrainConfig(steps=10, batch_size=8)),
     lambda: train(ModelConfig(hidden_size=32, seq_len=40), TrainConfig(steps=10, batch_size=8))),
    ("twins lstm", lambda: C.twins_cost(ModelConfig(cell="lstm", hidden_size=24, seq_len=30), TrainConfig(steps=5)),
     lambda: twin_runs(ModelConfig(cell="lstm", hidden_size=24, seq_len=30), TrainConfig(steps=5))),
    ("tbptt gru", lambda: C.training_cost(ModelConfig(cell="gru", hidden_size=32, seq_len=40),
                                          TrainConfig(steps=5, batch_size=4, k1=5, k2=10)),
     lambda: train(ModelConfig(cell="gru", hidden_size=32, seq_len=40), TrainConfig(steps=5, batch_size=4, k1=5, k2=10))),
]  # fmt: skip


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("what,estimate,run", GRID, ids=[g[0] for g in GRID])
def test_estimates_within_a_stated_factor_of_measured(what, estimate, run):
    est, meas = estimate().seconds, cpu(run)
    assert 1 / FACTOR <= est / meas <= FACTOR, f"{what}: estimated {est:.3f} s, measured {meas:.3f} s"


@pytest.mark.usefixtures("one_thread")
def test_cost_grows_with_the_settings_that_drive_it():
    d, t = ModelConfig(), TrainConfig(steps=100, batch_size=8)
    base = C.twins_cost(d, t).seconds
    assert C.twins_cost(d, TrainConfig(steps=200, batch_size=8)).seconds == pytest.approx(2 * base)
    assert C.twins_cost(ModelConfig(seq_len=200), t).seconds > 3 * base
    assert C.twins_cost(ModelConfig(hidden_size=256), TrainConfig(steps=100, batch_size=64)).seconds > 10 * base
    assert C.flow_cost(d, 2).seconds > C.flow_cost(d).seconds
    big = C.twins_cost(ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=1000, batch_size=64))
    # streamed batches: memory is one step's, whatever the number of steps
    assert big.bytes > 5 * C.twins_cost(d, t).bytes
    assert (
        big.bytes
        == C.twins_cost(
            ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=10, batch_size=64)
        ).bytes
    )


@pytest.mark.usefixtures("one_thread")
def test_the_calculator_is_bounded_whatever_its_sizes():
    from bptt_core.learning.calculator import MAX_LAYERS

    worst = C.calculator_cost("lstm", 256, 512, 256, 2000, 1024, MAX_LAYERS)
    assert B.fits(worst), worst.describe()


# == A constant the cost model shares with the player ========================================================


def test_the_cost_model_measures_as_many_lyapunov_exponents_as_the_player():
    from bptt_core.analyses import cost
    from bptt_core.learning import player

    assert cost.PLAYER_LYAPUNOV == player.DEFAULT_LYAPUNOV
