"""Uploading a module as a file (dashboard and command line alike)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from bptt_core.analyses import sources as S
from bptt_core.files.model_io import model_bytes
from bptt_core.models.recurrent import ElmanRNN

ROOT = Path(__file__).resolve().parents[2]
I, H, T = 3, 6, 20


def module(cell: str, act: str | None, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ElmanRNN(I, H, act) if cell == "rnn" else (nn.LSTM if cell == "lstm" else nn.GRU)(I, H)


def upload(mod, name, readout=None, nonlin=None, seq: tuple[bytes, str] | None = None):
    seq_bytes, seq_name = seq if seq is not None else (None, "")
    up, loaded, notes = S.make_upload(model_bytes(mod, name, readout), name, nonlin, seq_bytes, seq_name)
    return up, loaded, notes


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bptt_core", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
