"""From a :class:`ModelConfig` to the seeded model, readout and data every analysis starts from."""

from __future__ import annotations

import torch
from torch import nn

from .cells import LRU
from .config import ModelConfig
from .init import initialise
from .models import make_rnn
from .tasks import TaskData, make_task, task_input_size, task_output_size


def build_model(cfg: ModelConfig) -> tuple[nn.Module, nn.Linear]:
    """The recurrent module and its linear readout, float32, the same for the same config."""
    input_size = task_input_size(cfg.task, cfg.input_size)
    if cfg.cell == "lru":
        rnn = LRU(input_size, cfg.hidden_size, r_min=cfg.r_min, r_max=cfg.r_max)
    else:
        rnn = make_rnn(cfg.cell, input_size, cfg.hidden_size, cfg.activation, cfg.num_layers)
    initialise(rnn, cfg.init, cfg.gain, cfg.spectral_radius, cfg.seed)
    if cfg.cell == "lstm" and cfg.forget_bias:
        with torch.no_grad():  # torch's gate order is (input, forget, cell, output)
            rnn.bias_ih_l0[cfg.hidden_size : 2 * cfg.hidden_size] += cfg.forget_bias
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    readout = nn.Linear(cfg.hidden_size, task_output_size(cfg.task, cfg.input_size))
    with torch.no_grad():
        bound = 1.0 / cfg.hidden_size**0.5
        readout.weight.copy_((torch.rand(readout.weight.shape, generator=gen) * 2 - 1) * bound)
        readout.bias.zero_()
    return rnn, readout


def build_task(cfg: ModelConfig) -> TaskData:
    # Data seed offset from the weights' seed so that the two are independent draws.
    return make_task(cfg.task, cfg.seq_len, cfg.batch_size, cfg.seed + 2, cfg.input_size)
