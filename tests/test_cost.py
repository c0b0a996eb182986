"""The cost model (bptt_core.cost): estimates against measurements, budgets, refusals, the CLI.

The estimates are CPU seconds of one core (bench/bench_cost.py calibrates them); measured here as
CPU time of this process on a small grid, the check allows twice bench's accepted factor, since the
test machine is shared. What must hold whatever the machine: the formulas scale with the settings
(an order of magnitude off fails).
"""

import time

import pytest
import torch

from bptt_core import cost as C
from bptt_core import report as R
from bptt_core.cli import main
from bptt_core.config import ModelConfig
from bptt_core.training import TrainConfig, train, twin_runs

FACTOR = 2 * C.ACCURACY_FACTOR


@pytest.fixture(autouse=True)
def one_thread():
    """As the server computes (pages/common.report): one torch thread, whose CPU time is the work."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cpu(fn) -> float:
    fn()  # warm-up
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


GRID = [  # (what, estimate, run): small sizes, spread over the formulas' terms
    ("flow fro", lambda: C.flow_cost(ModelConfig(hidden_size=64, seq_len=120)),
     lambda: R.flow_matrix_of(ModelConfig(hidden_size=64, seq_len=120))),
    ("flow spectral", lambda: C.flow_cost(ModelConfig(hidden_size=48, seq_len=60), 2),
     lambda: R.flow_matrix_of(ModelConfig(hidden_size=48, seq_len=60), 2)),
    ("train rnn", lambda: C.training_cost(ModelConfig(hidden_size=32, seq_len=40), TrainConfig(steps=10, batch_size=8)),
     lambda: train(ModelConfig(hidden_size=32, seq_len=40), TrainConfig(steps=10, batch_size=8))),
    ("twins lstm", lambda: C.twins_cost(ModelConfig(cell="lstm", hidden_size=24, seq_len=30), TrainConfig(steps=5)),
     lambda: twin_runs(ModelConfig(cell="lstm", hidden_size=24, seq_len=30), TrainConfig(steps=5))),
    ("tbptt gru", lambda: C.training_cost(ModelConfig(cell="gru", hidden_size=32, seq_len=40),
                                          TrainConfig(steps=5, batch_size=4, k1=5, k2=10)),
     lambda: train(ModelConfig(cell="gru", hidden_size=32, seq_len=40), TrainConfig(steps=5, batch_size=4, k1=5, k2=10))),
]  # fmt: skip


@pytest.mark.parametrize("what,estimate,run", GRID, ids=[g[0] for g in GRID])
def test_estimates_within_a_stated_factor_of_measured(what, estimate, run):
    est, meas = estimate().seconds, cpu(run)
    assert 1 / FACTOR <= est / meas <= FACTOR, f"{what}: estimated {est:.3f} s, measured {meas:.3f} s"


def test_cost_grows_with_the_settings_that_drive_it():
    d, t = ModelConfig(), TrainConfig(steps=100, batch_size=8)
    base = C.twins_cost(d, t).seconds
    assert C.twins_cost(d, TrainConfig(steps=200, batch_size=8)).seconds == pytest.approx(2 * base)
    assert C.twins_cost(ModelConfig(seq_len=200), t).seconds > 3 * base
    assert C.twins_cost(ModelConfig(hidden_size=256), TrainConfig(steps=100, batch_size=64)).seconds > 10 * base
    assert C.flow_cost(d, 2).seconds > C.flow_cost(d).seconds
    assert (
        C.twins_cost(
            ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=1000, batch_size=64)
        ).bytes
        > 2**30
    )


def test_defaults_are_light_and_the_issue_maxima_are_refused():
    d = ModelConfig()
    for c in (C.flow_cost(d), C.spectrum_cost(d), C.lyapunov_cost(d), C.loss_gradients_cost(d),
              C.comparison_cost(d, 10, 10), C.report_cost(d)):  # fmt: skip
        assert c.light and c.fits(), c.describe()
    assert C.twins_cost(d, TrainConfig(steps=100, batch_size=8)).fits()
    worst = C.twins_cost(ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=1000, batch_size=64))
    assert not worst.fits(C.CEILING)  # ~an hour: refused even with the override
    with pytest.raises(C.OverBudget) as e:
        worst.check()
    msg = str(e.value)
    assert "over the per-request budget" in msg and "Lower the training steps, the batch size" in msg
    assert isinstance(e.value, ValueError)
    spectral = C.flow_cost(ModelConfig(hidden_size=256, seq_len=400), 2)
    assert not spectral.fits() and "the norm (Frobenius is cheaper)" in spectral.refusal()


def test_the_override_is_bounded_by_the_ceiling():
    b = C.budget(seconds=200)
    assert b.seconds == 200 and b.bytes == C.REQUEST_BUDGET.bytes
    with pytest.raises(ValueError, match="ceiling"):
        C.budget(seconds=C.CEILING.seconds + 1)
    with pytest.raises(ValueError, match="ceiling"):
        C.budget(gib=C.CEILING.bytes / 2**30 * 2)
    with pytest.raises(ValueError):
        C.budget(seconds=float("inf"))


def test_max_steps_within_the_budget():
    d = ModelConfig()
    n = C.max_steps_within(d, TrainConfig(steps=100, batch_size=8))
    assert 0 < n < 5000
    assert C.twins_cost(d, TrainConfig(steps=n, batch_size=8)).fits()
    assert not C.twins_cost(d, TrainConfig(steps=n + 1, batch_size=8)).fits()


def test_cli_refuses_over_budget_work_with_exit_2(tmp_path, capsys):
    args = ["jacobian", "--hidden-size", "256", "--seq-len", "400", "--norm", "2", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "over the per-request budget" in err and "Lower" in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_cli_budget_override_is_bounded(tmp_path, capsys):
    assert main(["jacobian", "--seq-len", "10", "--budget", "1e6", "--out", str(tmp_path / "o")]) == 2
    assert "ceiling" in capsys.readouterr().err
    assert (
        main(["jacobian", "--seq-len", "10", "--hidden-size", "8", "--budget", "120", "--out", str(tmp_path / "o")])
        == 0
    )


def test_cli_report_refuses_long_training(tmp_path, capsys):
    args = ["report", "--hidden-size", "256", "--seq-len", "400", "--cell", "gru", "--train-steps", "3000",
            "--out", str(tmp_path / "r.html")]  # fmt: skip
    assert main(args) == 2
    assert "The HTML report would need" in capsys.readouterr().err
