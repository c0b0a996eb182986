"""Stacked, batch-first and diagonal modules in the library's state layout (every layer's state, LSTM (h, c)),
and autograd references built on the module's own forward, one step at a time (float64)."""

from __future__ import annotations

import math

import torch
from torch import nn

from tests.helpers.cells import diagonal_cells, stacked_cells

I, H, T = 2, 3, 6
STACKED = stacked_cells(I, H)
DIAGONAL = diagonal_cells(I, H)


def make_module(factory, seed=0, scale=1.5):
    torch.manual_seed(seed)
    m = factory()
    if isinstance(m, nn.RNNBase):  # weights large enough that the nonlinearities show
        with torch.no_grad():
            for p in m.parameters():
                p.uniform_(-scale / math.sqrt(H), scale / math.sqrt(H))
    return m.double()


ALL = {**STACKED, **DIAGONAL}
