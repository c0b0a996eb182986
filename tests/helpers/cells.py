"""Every recurrent module the library accepts, as factories: one grid for all the gradient tests."""

import torch
from torch import nn

from bptt_core.models.recurrent import ElmanRNN


def recurrent_cells(I: int, H: int) -> dict:
    """name -> zero-argument factory of a fresh (float32) module with input size I and H hidden units."""
    return {
        "elman-tanh": lambda: ElmanRNN(I, H, "tanh"),
        "elman-relu": lambda: ElmanRNN(I, H, "relu"),
        "elman-sigmoid": lambda: ElmanRNN(I, H, "sigmoid"),
        "elman-linear": lambda: ElmanRNN(I, H, "linear"),
        "nn.RNN-tanh": lambda: nn.RNN(I, H, nonlinearity="tanh"),
        "nn.RNN-relu": lambda: nn.RNN(I, H, nonlinearity="relu"),
        "nn.LSTM": lambda: nn.LSTM(I, H),
        "nn.GRU": lambda: nn.GRU(I, H),
    }


def stacked_cells(I: int, H: int) -> dict:
    """Stacked and batch-first torch modules (the state is every layer's state)."""
    return {
        "nn.RNN-2layer": lambda: nn.RNN(I, H, num_layers=2),
        "nn.RNN-relu-3layer-bf": lambda: nn.RNN(I, H, num_layers=3, nonlinearity="relu", batch_first=True),
        "nn.LSTM-2layer": lambda: nn.LSTM(I, H, num_layers=2),
        "nn.LSTM-2layer-bf": lambda: nn.LSTM(I, H, num_layers=2, batch_first=True),
        "nn.GRU-3layer": lambda: nn.GRU(I, H, num_layers=3),
        "nn.GRU-bf": lambda: nn.GRU(I, H, batch_first=True),
    }


def diagonal_cells(I: int, H: int) -> dict:
    """The diagonal recurrences of bptt_core.models.cells, the minimal ones in both scan modes."""
    from bptt_core.models.cells import LRU, MinGRU, MinLSTM, SelectiveSSM

    return {
        "LRU": lambda: LRU(I, H),
        "LRU-ring-0.9-0.999": lambda: LRU(I, H, r_min=0.9, r_max=0.999, max_phase=0.5),
        "MinGRU": lambda: MinGRU(I, H),
        "MinGRU-parallel": lambda: MinGRU(I, H, scan="parallel"),
        "MinLSTM": lambda: MinLSTM(I, H),
        "MinLSTM-parallel": lambda: MinLSTM(I, H, scan="parallel"),
        "SelectiveSSM": lambda: SelectiveSSM(I, H),
    }


def jacobian_through(step, m, x, states, t, s, rows: slice, cols: slice) -> torch.Tensor:
    """d state_t[rows] / d state_s[cols] by autograd through ``step(m, x_t, state)`` run from s to t, every other
    entry of state_s held fixed (0-indexed: state_t is the state after x[t], i.e. states[t + 1])."""
    base = states[s + 1].clone()

    def f(part):
        state = base.clone()
        state[cols] = part
        for u in range(s + 1, t + 1):
            state = step(m, x[u], state)
        return state[rows]

    return torch.autograd.functional.jacobian(f, base[cols].clone())
