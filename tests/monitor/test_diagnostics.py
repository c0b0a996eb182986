"""The monitor's diagnostics (bptt_core.monitor.diagnostics): the stacked flow matrix and ||dL/dh_t||
equal autograd through torch's own forward (float64)."""

import math

import numpy as np
import pytest
import torch

from bptt_core import GradientFlowMonitor
from tests.helpers.monitor import CELLS, Net, batch


def _stacked_autograd_log_norm(rnn64, x, t, s, hx=None):
    """log10 ||d h_t^top / d h_s^top||_F through torch's own stacked forward, float64, with every
    other part of the state at s held fixed: run to s, then from s with the top h as the variable."""
    L = rnn64.num_layers
    bf = rnn64.batch_first
    seq = (lambda a: a[None]) if bf else (lambda a: a[:, None])  # (T, I) -> one batch of one sequence
    _, state = rnn64(seq(x[: s + 1]), hx)
    lstm = isinstance(state, tuple)
    h, c = (state[0], state[1]) if lstm else (state, None)
    top = h[L - 1, 0].detach().clone()  # (H,)

    def f(top_h):
        hs = torch.cat([h[: L - 1].detach(), top_h[None, None]], 0)  # (L, 1, H)
        out, _ = rnn64(seq(x[s + 1 : t + 1]), (hs, c.detach()) if lstm else hs)
        return (out[0] if bf else out[:, 0])[-1]  # (H,): top-layer h_t

    J = torch.autograd.functional.jacobian(f, top)
    return math.log10(float(torch.linalg.matrix_norm(J)))


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("batch_first,with_h0", [(False, False), (True, False), (True, True)])
def test_stacked_flow_matrix_equals_autograd_through_torch_forward(tmp_path, cell, batch_first, with_h0):
    torch.manual_seed(3)
    net = Net(cell, 3, batch_first, hidden=5, dtype=torch.float64)
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, tensorboard=False, background=False)
    x, y = batch(0, T=7, batch_first=batch_first, dtype=torch.float64)
    hx = None
    if with_h0:  # torch's (num_layers, batch, H) initial state, and c0 for the LSTM
        h = torch.randn(3, 4, 5, dtype=torch.float64)
        hx = (h, torch.randn_like(h)) if cell == "lstm" else h
    out, _ = net.rnn(x, hx)
    pred = net.head(out).sum(-1)
    mon.watch(out)
    ((pred - y) ** 2).sum().backward()
    rec = mon.step()
    mon.close()
    first = x[0] if batch_first else x[:, 0]  # (T, I)
    for t, s in [(1, 0), (4, 1), (6, 0), (6, 5)]:
        hx1 = None if hx is None else (tuple(p[:, :1] for p in hx) if cell == "lstm" else hx[:, :1])
        want = _stacked_autograd_log_norm(net.rnn, first, t, s, hx1)
        assert rec["flow"][t, s] == pytest.approx(want, abs=1e-9), (t, s)
    assert np.isnan(rec["flow"][0, 1])


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("num_layers", [1, 2])
def test_total_dl_dh_equals_autograd_through_an_unrolled_forward(tmp_path, cell, num_layers):
    """dl_dh_total[t] = ||dL/dh_t|| through the recurrence: checked against probes added to the top
    layer's h_t in a step-by-step run of the same torch module (float64)."""
    torch.manual_seed(5)
    net = Net(cell, num_layers, hidden=6, dtype=torch.float64)
    mon = GradientFlowMonitor(net, tmp_path / "run", every=1, tensorboard=False, background=False)
    x, y = batch(0, T=8, dtype=torch.float64)
    out, pred = net(x)
    mon.watch(out)
    ((pred - y) ** 2).sum().backward()
    rec = mon.step()
    mon.close()
    xs, ys = x[:, :1], y[:, :1]  # the first sequence, as a batch of one
    probes = [torch.zeros(1, 6, dtype=torch.float64, requires_grad=True) for _ in range(8)]
    hx, loss = None, 0.0
    for t in range(8):
        o, hx = net.rnn(xs[t : t + 1], hx)
        h, c = (hx[0], hx[1]) if cell == "lstm" else (hx, None)
        top = h[-1] + probes[t]  # (1, H): the top layer's h_t, made a variable
        h = torch.cat([h[:-1], top[None]], 0)
        hx = (h, c) if cell == "lstm" else h
        loss = loss + ((net.head(top).sum(-1) - ys[t]) ** 2).sum()
    loss.backward()
    want = np.array([float(p.grad.norm()) for p in probes])
    np.testing.assert_allclose(rec["dl_dh_total"], want, rtol=1e-9, atol=1e-12)
    assert rec["dl_dh_total"][-1] == pytest.approx(rec["dl_dh"][-1])  # nothing comes after the last step
