"""Every recurrent module the library accepts, as factories: one grid for all the gradient tests."""

from torch import nn

from bptt_core.models import ElmanRNN


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
