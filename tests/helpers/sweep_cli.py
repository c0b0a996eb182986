"""Running ``python -m bptt_core sweep`` and comparing the tables it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = [
    "--cell", "rnn", "--activation", "tanh", "--init", "gaussian", "--hidden-size", "8", "--seq-len", "20",
    "--seed", "0", "--x", "gain:0.5:3.0:6", "--y", "spectral_radius:0.5:2.0:4", "--seeds", "2",
    "--measure", "lyapunov,decay_rate,memory_horizon", "--chunk-size", "7", "--no-progress",
]  # fmt: skip


def run_cli(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bptt_core", "sweep", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=0, atol=1e-9, equal_nan=True)
