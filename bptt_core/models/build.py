"""From a :class:`ModelConfig` to the seeded model, readout and data every analysis starts from."""

from __future__ import annotations

import torch
from torch import nn

from bptt_core.config import ModelConfig
from bptt_core.data.tasks import TaskData, make_task, task_input_size, task_output_size

from .cells import LRU
from .init import initialise
from .recurrent import make_rnn


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
