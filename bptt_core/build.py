"""From a :class:`ModelConfig` to the seeded model, readout and data every analysis starts from."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .init import initialise
from .models import make_rnn
from .tasks import TaskData, make_task, task_input_size, task_output_size


def build_model(cfg: ModelConfig) -> tuple[nn.Module, nn.Linear]:
    """The recurrent module and its linear readout, float32, the same for the same config."""
    input_size = task_input_size(cfg.task, cfg.input_size)
    rnn = make_rnn(cfg.cell, input_size, cfg.hidden_size, cfg.activation)
    initialise(rnn, cfg.init, cfg.gain, cfg.spectral_radius, cfg.seed)
    return rnn, seeded_readout(cfg.hidden_size, task_output_size(cfg.task, cfg.input_size), cfg.seed)


def seeded_readout(hidden_size: int, output_size: int, seed: int) -> nn.Linear:
    """The linear readout every analysis uses when none is given: W_y ~ U(-1/sqrt(H), 1/sqrt(H)) drawn
    from seed + 1 (the weights use seed, the data seed + 2), b_y = 0."""
    gen = torch.Generator().manual_seed(seed + 1)
    readout = nn.Linear(hidden_size, output_size)
    with torch.no_grad():
        bound = 1.0 / hidden_size**0.5
        readout.weight.copy_((torch.rand(readout.weight.shape, generator=gen) * 2 - 1) * bound)
        readout.bias.zero_()
    return readout


def build_task(cfg: ModelConfig) -> TaskData:
    # Data seed offset from the weights' seed so that the two are independent draws.
    return make_task(cfg.task, cfg.seq_len, cfg.batch_size, cfg.seed + 2, cfg.input_size)
