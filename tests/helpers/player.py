"""Runs with weight snapshots for the training player's tests."""

from __future__ import annotations

from bptt_core.config import ModelConfig
from bptt_core.learning.training import TrainConfig, train, twin_runs

PLAYER_SMALL = dict(seq_len=6, hidden_size=4)

# (name, model config, train config, which run): plain BPTT, Adam on an LSTM, TBPTT on a GRU, a clipped twin
RUNS = [
    (
        "rnn-sgd",
        ModelConfig(task="gaussian", **PLAYER_SMALL),
        TrainConfig(steps=5, batch_size=3, lr=0.05, snapshots=3),
        None,
    ),
    (
        "lstm-adam",
        ModelConfig(cell="lstm", task="adding", **PLAYER_SMALL),
        TrainConfig(steps=5, batch_size=2, optimizer="adam", snapshots=3),
        None,
    ),
    (
        "gru-tbptt",
        ModelConfig(cell="gru", task="sine", **PLAYER_SMALL),
        TrainConfig(steps=5, batch_size=2, lr=0.05, k1=2, k2=3, snapshots=3),
        None,
    ),
    (
        "twin-norm",
        ModelConfig(task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, **PLAYER_SMALL),
        TrainConfig(steps=5, batch_size=2, lr=0.05, clip_threshold=0.5, snapshots=2),
        "norm",
    ),
]


def _run(m, cfg, twin):
    return train(m, cfg) if twin is None else twin_runs(m, cfg)[twin]
