"""The Lightning callback logs the same values as the plain monitor on the same seed and batches."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch", reason="lightning is pinned in requirements.txt; not installed here")

from bptt_core import GradientFlowMonitor  # noqa: E402
from bptt_core.lightning import GradientFlowCallback  # noqa: E402
from bptt_core.monitor.runs import load_run  # noqa: E402

CLIP, LR, STEPS, EVERY = 0.5, 0.1, 7, 3


class Seq(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 8, num_layers=2, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return out, self.head(out[:, -1]).squeeze(-1)

    def training_step(self, batch, _):
        x, y = batch
        _, pred = self(x)
        return ((pred - y) ** 2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR)


def data():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(STEPS * 4, 12, 2, generator=g)
    return DataLoader(TensorDataset(x, x.sum((1, 2))), batch_size=4, shuffle=False)


def plain(tmp_path):
    torch.manual_seed(0)
    model = Seq()
    opt = model.configure_optimizers()
    with GradientFlowMonitor(model, tmp_path / "plain", every=EVERY, clip=CLIP) as mon:
        for x, y in data():
            out, pred = model(x)
            mon.watch(out)
            loss = ((pred - y) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            mon.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
    return mon


def with_lightning(tmp_path):
    torch.manual_seed(0)
    model = Seq()
    cb = GradientFlowCallback(tmp_path / "lightning", every=EVERY)
    trainer = pl.Trainer(
        max_steps=STEPS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, callbacks=[cb],
        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=CLIP,
        default_root_dir=tmp_path, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, data())
    return cb


def test_callback_logs_what_the_plain_monitor_logs(tmp_path):
    mon = plain(tmp_path)
    cb = with_lightning(tmp_path)
    assert cb.monitor.cfg.clip == CLIP  # taken from the Trainer's gradient_clip_val
    got, want = cb.monitor.history, mon.history
    assert any(r["grad_norm"] > CLIP for r in want)  # clipping matters: a norm read after it would differ
    assert [r["step"] for r in got] == [r["step"] for r in want] == [0, 3, 6]
    for a, b in zip(got, want, strict=True):
        for k, v in b.items():
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(a[k]), k
            else:
                assert a[k] == pytest.approx(v, rel=1e-5, abs=1e-9), k
    np.testing.assert_allclose(cb.monitor.param_norms, mon.param_norms, rtol=1e-5)
    lr, pr = load_run(tmp_path / "lightning"), load_run(tmp_path / "plain")
    for s in pr.steps:
        a, b = lr.step_data(s), pr.step_data(s)
        np.testing.assert_allclose(a.flow, b.flow, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.dl_dh, b.dl_dh, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(a.lyapunov, b.lyapunov, rtol=1e-5, atol=1e-7)
