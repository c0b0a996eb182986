"""Pairs of models A and B, and one model's matrix, metrics and eigenvalues, for compare mode's tests."""

from __future__ import annotations

import numpy as np

from bptt_core.config import ModelConfig
from bptt_core.flow.jacobians import jacobian_log_norms
from bptt_core.flow.spectra import spectrum
from bptt_core.flow.summary import decay_rate, memory_horizon
from bptt_core.models.build import build_model, build_task

SMALL = dict(seq_len=8, hidden_size=5)

# (A, B) pairs a lecturer compares: activations, initialisations, cells
PAIRS = [
    (ModelConfig(activation="tanh", **SMALL), ModelConfig(activation="relu", **SMALL)),
    (ModelConfig(init="orthogonal", **SMALL), ModelConfig(init="gaussian", gain=1.5, **SMALL)),
    (ModelConfig(cell="rnn", **SMALL), ModelConfig(cell="lstm", **SMALL)),
]


def _analysis(cfg: ModelConfig) -> tuple[np.ndarray, dict, np.ndarray]:
    rnn, _ = build_model(cfg)
    x = build_task(cfg).x[:, 0]
    L = jacobian_log_norms(rnn, x)
    sp = spectrum(rnn)
    metrics = dict(decay_rate=decay_rate(L), memory_horizon=memory_horizon(L), rho=sp.rho, sigma1=sp.sigma1)
    return L, metrics, sp.eigenvalues
