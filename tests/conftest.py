"""Fixtures shared by test files in more than one folder (each computed once per test module)."""

from __future__ import annotations

import pytest
import torch

from bptt_core.config import ModelConfig
from bptt_core.flow.sensitivity import lambda_sensitivity
from bptt_core.learning.training import TrainConfig, train
from tests.helpers.player import PLAYER_SMALL
from tests.helpers.runs import make_run
from tests.helpers.sweep_cli import CONTRACT, run_cli


@pytest.fixture
def one_thread():
    """As the server computes (pages/common.report): one torch thread, whose CPU time is the work."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def curve():
    return lambda_sensitivity(radii=(0.5, 0.9, 0.99, 0.999), seq_len=300, hidden_size=6, n_sequences=48, seed=1)


@pytest.fixture(scope="module")
def clipped_run():
    m = ModelConfig(task="gaussian", activation="relu", init="gaussian", spectral_radius=1.1, **PLAYER_SMALL)
    return train(m, TrainConfig(steps=8, batch_size=2, lr=0.05, clip="norm", clip_threshold=0.5, snapshots=3))


@pytest.fixture()
def run_dir(tmp_path):
    mon = make_run(tmp_path / "runs" / "exp1")
    return tmp_path / "runs" / "exp1", mon


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    r = run_cli(*CONTRACT, "--out", out)
    assert r.returncode == 0, r.stderr
    return out
