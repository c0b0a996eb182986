"""The cost model (bptt_core.analyses.cost): estimates against measurements; the dashboard's budgets
(dashboard.budget) and the command line's estimate before the work.

The estimates are CPU seconds of one core (bench/bench_cost.py calibrates them); measured here as
CPU time of this process on a small grid, the check allows twice bench's accepted factor, since the
test machine is shared. What must hold whatever the machine: the formulas scale with the settings
(an order of magnitude off fails).
"""

import time

import pytest
import torch

from bptt_core.analyses import cost as C
from bptt_core.analyses.numbers import flow_matrix_of
from bptt_core.cli.main import main
from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig, train, twin_runs
from bptt_core.report.html import build_report
from dashboard import budget as B

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
    big = C.twins_cost(ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=1000, batch_size=64))
    # streamed batches: memory is one step's, whatever the number of steps
    assert big.bytes > 5 * C.twins_cost(d, t).bytes
    assert (
        big.bytes
        == C.twins_cost(
            ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=10, batch_size=64)
        ).bytes
    )


def test_defaults_are_light_and_the_issue_maxima_are_refused_by_the_dashboard():
    d = ModelConfig()
    for c in (C.flow_cost(d), C.spectrum_cost(d), C.lyapunov_cost(d), C.loss_gradients_cost(d),
              C.comparison_cost(d, 10, 10), C.report_cost(d)):  # fmt: skip
        assert B.light(c) and B.fits(c), c.describe()
    assert B.fits(C.twins_cost(d, TrainConfig(steps=100, batch_size=8)))
    worst = C.twins_cost(ModelConfig(cell="gru", hidden_size=256, seq_len=400), TrainConfig(steps=1000, batch_size=64))
    assert not B.fits(worst, B.CEILING)  # ~an hour: refused even with the override
    with pytest.raises(B.OverBudget) as e:
        B.check(worst)
    msg = str(e.value)
    assert "over the per-request budget" in msg and "Lower the training steps, the batch size" in msg
    assert isinstance(e.value, ValueError)
    spectral = C.flow_cost(ModelConfig(hidden_size=256, seq_len=400), 2)
    assert not B.fits(spectral) and "or use the Frobenius norm (far cheaper)." in B.refusal(spectral)


def test_the_override_is_bounded_by_the_ceiling():
    b = B.budget(seconds=200)
    assert b.seconds == 200 and b.bytes == B.REQUEST_BUDGET.bytes
    with pytest.raises(ValueError, match="ceiling"):
        B.budget(seconds=B.CEILING.seconds + 1)
    with pytest.raises(ValueError, match="ceiling"):
        B.budget(gib=B.CEILING.bytes / 2**30 * 2)
    with pytest.raises(ValueError):
        B.budget(seconds=float("inf"))


def test_max_steps_within_the_budget():
    d = ModelConfig()
    n = B.max_steps_within(d, TrainConfig(steps=100, batch_size=8))
    assert 0 < n < 5000
    assert B.fits(C.twins_cost(d, TrainConfig(steps=n, batch_size=8)))
    assert not B.fits(C.twins_cost(d, TrainConfig(steps=n + 1, batch_size=8)))


def test_the_cli_says_the_estimate_before_the_work_and_goes_on(tmp_path, capsys):
    """The command line takes work the dashboard would refuse: it prints the estimate first, then does it."""
    args = ["jacobian", "--hidden-size", "8", "--seq-len", "10", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("estimate: The gradient-flow matrix (Frobenius norm, T = 10, state size 8): about ")
    assert (tmp_path / "o" / "jacobian.npy").exists()
    big = C.flow_cost(ModelConfig(hidden_size=256, seq_len=400), 2)
    assert not B.fits(big)  # the dashboard's budget refuses this; the command line only estimates it


def test_the_cli_refuses_only_what_does_not_fit_or_the_users_own_budget(tmp_path, capsys, monkeypatch):
    from bptt_core import resources

    args = ["jacobian", "--hidden-size", "8", "--seq-len", "10", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(resources, "available_bytes", lambda: 2**20)  # a machine with 1 MiB free
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "this machine has 1 MiB available" in err
    assert not (tmp_path / "o").exists()  # refused before any work
    monkeypatch.undo()
    assert main([*args, "--budget", "1e-9"]) == 2  # the user's own limit
    assert "over --budget" in capsys.readouterr().err
    assert main([*args, "--budget", "1e6"]) == 0  # no ceiling: the user's machine, the user's time


def test_cli_report_refuses_long_training_only_over_the_users_budget(tmp_path, capsys):
    args = ["report", "--hidden-size", "256", "--seq-len", "400", "--cell", "gru", "--train-steps", "3000",
            "--budget", "60", "--out", str(tmp_path / "r.html")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("estimate: The HTML report: about ") and "over --budget" in err


def test_the_report_refuses_only_what_cannot_fit_in_memory(monkeypatch):
    from bptt_core import resources

    cfg = ModelConfig(cell="gru", hidden_size=16, seq_len=20)
    monkeypatch.setattr(resources, "available_bytes", lambda: 2**20)
    with pytest.raises(resources.DoesNotFit, match="The HTML report needs about .* this machine has 1 MiB"):
        build_report(cfg)


def test_the_calculator_is_bounded_whatever_its_sizes():
    from bptt_core.learning.calculator import MAX_LAYERS

    worst = C.calculator_cost("lstm", 256, 512, 256, 2000, 1024, MAX_LAYERS)
    assert B.fits(worst), worst.describe()
