"""The monitor's worker process (bptt_core.monitor.worker): niced and stopped at close; a lost worker or a
module it cannot import hands the work to a thread; a strict failure is raised as itself."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from bptt_core import GradientFlowMonitor, MonitorWarning, jacobian_log_norms
from tests.helpers.monitor import Net, batch, train


def test_background_process_is_niced_and_stopped_at_close(tmp_path):
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path / "run", every=2, tensorboard=False, background="process")
    worker = mon._worker
    assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 19  # training always goes first
    train(net, mon, 3, 1.0, False)
    mon.close()
    assert worker._proc.poll() == 0  # ended by the end of its input, not killed
    assert [r["step"] for r in mon.history] == [0, 2] and all(math.isfinite(r["decay_rate"]) for r in mon.history)


def test_a_lost_worker_process_is_reported_and_the_thread_takes_over(tmp_path):
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, tensorboard=False, background="process")
    train(net, mon, 1, 1.0, False)
    mon._pending[0].result()
    mon._worker._proc.kill()
    mon._worker._proc.wait()
    with pytest.warns(MonitorWarning, match="worker process stopped"):
        train(net, mon, 2, 1.0, False)
        mon.close()
    assert [r["step"] for r in mon.history] == [0, 1, 2]
    assert all(math.isfinite(r["decay_rate"]) for r in mon.history)  # nothing lost


def test_a_module_the_worker_cannot_import_is_computed_in_a_thread(tmp_path):
    class LocalRNN(nn.RNN):  # defined in a function: no process can import it
        pass

    torch.manual_seed(8)
    model = nn.ModuleDict({"rnn": LocalRNN(3, 5), "head": nn.Linear(5, 1)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonitorWarning)  # not news: no warning
        with GradientFlowMonitor(model, tmp_path / "run", every=1, tensorboard=False, background="process") as mon:
            x, y = batch(0)
            out, _ = model["rnn"](x)
            mon.watch(out)
            ((model["head"](out).sum(-1) - y) ** 2).sum().backward()
            mon.step()
    assert mon._worker is None
    flow = np.load(tmp_path / "run" / "steps" / "step_00000000.npz")["flow"]
    np.testing.assert_array_equal(flow, jacobian_log_norms(model["rnn"], x[:, 0]))


def test_a_strict_failure_in_the_worker_process_is_raised_as_itself_and_keeps_the_worker(tmp_path):
    """What the diagnostics raise in the worker (strict) reaches the loop as that error; it is not taken
    for a worker that cannot read the module (which would hand the work to a thread)."""
    net = Net("rnn")
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, strict=True, tensorboard=False, background="process")
    x, y = batch(0)
    x[3, 0, 0] = float("nan")  # the first sequence holds a NaN: the flow matrix refuses it by name
    out, pred = net(x)
    mon.watch(out)
    ((pred - y) ** 2).sum().backward()
    mon.step()
    with pytest.raises(ValueError, match="NaN"):
        mon.wait()
    assert mon._worker is not None and mon._worker.alive
    mon.close()
