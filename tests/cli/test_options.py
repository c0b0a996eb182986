"""The command line's shared options (bptt_core/cli/options.py): the model options mirror ModelConfig, the
cost estimate is printed before the work, only what cannot fit (or the user's own --budget) is refused, and a
hostile --model exits 2 with the loader's message."""

from __future__ import annotations

import io
import os

import pytest
import torch
from torch import nn

import bptt_core.files.model_io as mio
from bptt_core import ModelConfig
from bptt_core.analyses import cost as C
from bptt_core.cli.main import build_parser, main
from bptt_core.cli.options import config_from_args
from dashboard import budget as B
from tests.helpers.hostile import GOOD, attack_sd, torch_bytes
from tests.helpers.uploads import cli


def test_model_arguments_mirror_model_config_defaults():
    """Every ModelConfig field is an option with its default: a new field cannot be forgotten."""
    args = build_parser().parse_args(["jacobian", "--out", "x"])
    assert config_from_args(args) == ModelConfig()
    args = build_parser().parse_args(
        [
            "jacobian",
            "--out",
            "x",
            "--cell",
            "gru",
            "--hidden-size",
            "7",
            "--spectral-radius",
            "0.9",
            "--batch-size",
            "3",
        ]
    )
    assert config_from_args(args) == ModelConfig(cell="gru", hidden_size=7, spectral_radius=0.9, batch_size=3)


# == The estimate before the work; only what cannot fit or the user's --budget refused =======================


@pytest.mark.usefixtures("one_thread")
def test_the_cli_says_the_estimate_before_the_work_and_goes_on(tmp_path, capsys):
    """The command line takes work the dashboard would refuse: it prints the estimate first, then does it."""
    args = ["jacobian", "--hidden-size", "8", "--seq-len", "10", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("estimate: The gradient-flow matrix (Frobenius norm, T = 10, state size 8): about ")
    assert (tmp_path / "o" / "jacobian.npy").exists()
    big = C.flow_cost(ModelConfig(hidden_size=256, seq_len=400), 2)
    assert not B.fits(big)  # the dashboard's budget refuses this; the command line only estimates it


@pytest.mark.usefixtures("one_thread")
def test_the_cli_refuses_only_what_does_not_fit_or_the_users_own_budget(tmp_path, capsys, monkeypatch):
    from bptt_core import resources

    args = ["jacobian", "--hidden-size", "8", "--seq-len", "10", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(resources, "available_bytes", lambda: 2**20)  # a machine with 1 MiB free
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "this machine has 1 MiB available" in err
    assert not (tmp_path / "o").exists()  # refused before any work
    monkeypatch.undo()
    assert main([*args, "--budget", "1e-9"]) == 2  # the user's own limit
    assert "over --budget" in capsys.readouterr().err
    assert main([*args, "--budget", "1e6"]) == 0  # no ceiling: the user's machine, the user's time


# == A hostile --model: exit 2, nothing runs =================================================================


def test_cli_refuses_a_hostile_pt_with_exit_2_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Touch:
        def __reduce__(self):
            return (os.system, (f"touch '{marker}'",))

    buf = io.BytesIO()
    torch.save({**nn.RNN(2, 3).state_dict(), "evil": Touch()}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    for sub in (["jacobian", "--out", "o"], ["report", "--out", "r.html"]):
        r = cli(*sub, "--model", "evil.pt", cwd=tmp_path)
        assert r.returncode == 2
        assert "refused" in r.stderr and f"{os.system.__module__}.system" in r.stderr
        assert "Traceback" not in r.stderr
        assert not marker.exists()


# == Issue 11, finding 3: a refused archive exits 2 with the message =========================================


def test_finding3_cli_exits_2_with_the_message(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "m.pt"
    gru = torch_bytes(attack_sd(nn.GRU))
    bad.write_bytes(gru + GOOD)  # two archives, one behind the other (finding 5): refused
    rc = main(["jacobian", "--model", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and f"refused: the .pt archive has {len(gru)} bytes of data before its first entry" in err
    assert "Traceback" not in err

    def broken(*a, **k):
        raise TypeError("boom")

    monkeypatch.setattr(mio, "model_from_state_dict", broken)
    bad.write_bytes(GOOD)
    assert main(["jacobian", "--model", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "could not be read (TypeError)" in capsys.readouterr().err
