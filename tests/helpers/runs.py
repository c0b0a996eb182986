"""Run folders written by a real GradientFlowMonitor, and tampering with them."""

import torch
from torch import nn

from bptt_core import GradientFlowMonitor


def make_run(path, steps=5, every=2, clip=0.3, cell=nn.GRU):
    torch.manual_seed(0)
    rnn, head = cell(2, 6, num_layers=2), nn.Linear(6, 1)
    model = nn.ModuleDict({"rnn": rnn, "head": head})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientFlowMonitor(model, path, every=every, clip=clip, tensorboard=False) as mon:
        for i in range(steps):
            x = torch.randn(8, 3, 2, generator=torch.Generator().manual_seed(i))
            out, _ = rnn(x)
            mon.watch(out)
            loss = head(out[-1]).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            mon.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
    return mon


def _flip_byte(f):
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))
