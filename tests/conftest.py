"""Fixtures shared across the suite's folders: the one headless Chromium of a test session (tests/browser
and tests/test_install.py, the installed dashboard, both drive it), and fixtures used by test files in
more than one folder (each computed once per test module)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from bptt_core.config import ModelConfig
from bptt_core.flow.sensitivity import lambda_sensitivity
from bptt_core.learning.training import TrainConfig, train
from tests.helpers.player import PLAYER_SMALL
from tests.helpers.runs import make_run
from tests.helpers.sweep_cli import CONTRACT, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))

import harness as H  # noqa: E402


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole session: Playwright's sync API allows one driver per thread,
    so every browser test (with its own server or the shared one) takes its pages from this."""
    if not os.access(H.CHROMIUM, os.X_OK):
        pytest.skip(f"{H.CHROMIUM} not installed (bash scripts/setup.sh --test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = H.launch_chromium(pw)
        yield b
        b.close()


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
