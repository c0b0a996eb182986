"""A user's model and training loop with a GradientFlowMonitor watching it."""

import torch
from torch import nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Net(nn.Module):
    def __init__(self, cell="rnn", num_layers=1, batch_first=False, hidden=12, dtype=torch.float32):
        super().__init__()
        self.rnn = CELLS[cell](3, hidden, num_layers=num_layers, batch_first=batch_first).to(dtype)
        self.head = nn.Linear(hidden, 1).to(dtype)

    def forward(self, x):
        out, _ = self.rnn(x)
        return out, self.head(out).sum(-1)


def batch(step, T=9, B=4, batch_first=False, dtype=torch.float32):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(B, T, 3, generator=g, dtype=dtype) * 2
    y = torch.randn(B, T, generator=g, dtype=dtype)
    return (x, y) if batch_first else (x.transpose(0, 1), y.T)


def train(net, monitor, steps, clip, batch_first, retain=None, lr=0.05):
    """The user's loop: watch, backward, step, clip, update. Returns what clip_grad_norm_ returned."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    returned = []
    for i in range(steps):
        x, y = batch(i, batch_first=batch_first)
        out, pred = net(x)
        if retain is not None:
            out.retain_grad()
        monitor.watch(out)
        loss = ((pred - y) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        monitor.step()
        if retain is not None:
            retain.append(
                (x.detach().clone(), out.grad.detach().clone(), [p.detach().clone() for p in net.parameters()])
            )
        returned.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), clip)))
        opt.step()
    return returned
