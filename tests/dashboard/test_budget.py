"""The dashboard's request budgets (dashboard/budget.py): the defaults are light, the issue's maxima are
refused with what to lower, the override is bounded by the ceiling, the steps that fit are found."""

import pytest

from bptt_core.analyses import cost as C
from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig
from dashboard import budget as B


@pytest.mark.usefixtures("one_thread")
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


@pytest.mark.usefixtures("one_thread")
def test_the_override_is_bounded_by_the_ceiling():
    b = B.budget(seconds=200)
    assert b.seconds == 200 and b.bytes == B.REQUEST_BUDGET.bytes
    with pytest.raises(ValueError, match="ceiling"):
        B.budget(seconds=B.CEILING.seconds + 1)
    with pytest.raises(ValueError, match="ceiling"):
        B.budget(gib=B.CEILING.bytes / 2**30 * 2)
    with pytest.raises(ValueError):
        B.budget(seconds=float("inf"))


@pytest.mark.usefixtures("one_thread")
def test_max_steps_within_the_budget():
    d = ModelConfig()
    n = B.max_steps_within(d, TrainConfig(steps=100, batch_size=8))
    assert 0 < n < 5000
    assert B.fits(C.twins_cost(d, TrainConfig(steps=n, batch_size=8)))
    assert not B.fits(C.twins_cost(d, TrainConfig(steps=n + 1, batch_size=8)))
