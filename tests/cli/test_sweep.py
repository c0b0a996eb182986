"""``python -m bptt_core sweep`` (bptt_core/cli/sweep.py): the table it writes, and bad input (exit 2)."""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from bptt_core.cli.main import main
from bptt_core.config import ModelConfig
from bptt_core.sweeps.batched import single_measures
from bptt_core.sweeps.grid import Network
from tests.helpers.sweep_cli import assert_same_table, run_cli


def test_sweep_writes_the_contract_table(local_table):
    table = pd.read_csv(local_table / "sweep.csv")
    assert list(table.columns) == ["gain", "spectral_radius", "seed", "lyapunov", "decay_rate", "memory_horizon"]
    assert len(table) == 6 * 4 * 2
    assert sorted(set(table["gain"])) == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    assert sorted(set(table["seed"])) == [0, 1]
    assert_same_table(pd.read_parquet(local_table / "sweep.parquet"), table)
    # each row is the network the library builds for it, measured alone
    row = table.iloc[13]
    cfg = ModelConfig(cell="rnn", hidden_size=8, seq_len=20, init="gaussian", seed=int(row["seed"]),
                      gain=row["gain"], spectral_radius=row["spectral_radius"])  # fmt: skip
    alone = single_measures(Network(cfg))
    assert row["lyapunov"] == pytest.approx(alone["lyapunov"], abs=1e-12)
    assert row["decay_rate"] == pytest.approx(alone["decay_rate"], abs=1e-6)
    html = (local_table / "phase.html").read_text()
    assert "plotly" in html and "measured boundary" in html
    assert (local_table / "phase.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (local_table / "chunks").exists()  # served their purpose


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD = [
    (["--x", "gain:0.5:3:0"], "empty range for gain"),
    (["--x", "gain:0.5:3:1000", "--y", "bias_scale:0:1:200"], "too many networks"),
    (["--x", "gain:0.5:3:4", "--measure", "lyapunov,entropy"], "unknown measure 'entropy'"),
    (["--x", "temperature:0:1:3"], "unknown setting 'temperature'"),
    (["--x", "gain:0.5:3:4", "--scheduler", "localhost:8786"], "scheduler must be tcp://HOST:PORT"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_names_the_setting_and_exits_2(args, message, tmp_path, capsys):
    rc = main(["sweep", "--hidden-size", "4", "--seq-len", "5", *args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "sweep.csv").exists()


def test_unreachable_scheduler_exits_2(tmp_path):
    r = run_cli("--hidden-size", 4, "--seq-len", 5, "--x", "gain:1:2:2", "--scheduler", f"tcp://127.0.0.1:{free_port()}",
                "--out", tmp_path)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "scheduler: cannot reach the Dask scheduler" in r.stderr and "Traceback" not in r.stderr
