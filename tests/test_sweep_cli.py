"""``python -m bptt_core sweep``: the table it writes, bad input (exit 2), and a real Dask cluster.

The cluster is ``distributed.LocalCluster`` with two worker processes on 127.0.0.1, started here and
stopped by its process ids at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bptt_core.cli.main import main
from bptt_core.config import ModelConfig
from bptt_core.sweeps.batched import single_measures
from bptt_core.sweeps.distributed import chunk_path, run_to_folder
from bptt_core.sweeps.grid import Axis, Network, SweepSpec
from bptt_core.sweeps.run import assemble, compute_chunk, run_local, sweep

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    r = run_cli(*CONTRACT, "--out", out)
    assert r.returncode == 0, r.stderr
    return out


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


def test_a_rerun_computes_only_the_missing_chunks(tmp_path):
    spec = SweepSpec(ModelConfig(hidden_size=4, seq_len=6, init="gaussian"), Axis("gain", 0.5, 2, 6), chunk_size=2)
    whole = sweep(spec)
    folder = tmp_path / "chunks"
    run_to_folder(spec, tmp_path)  # every chunk on disk
    chunk_path(folder, 1).unlink()  # as if chunk 1 had failed
    kept = chunk_path(folder, 0).stat().st_mtime_ns
    seen = []
    table, _ = run_to_folder(spec, tmp_path, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(3, 3)]  # one chunk computed, two reused
    assert chunk_path(folder, 0).stat().st_mtime_ns == kept
    assert_same_table(table, whole)


# -- a real cluster -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)  # the worker processes import bptt_core
    c = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        scheduler_port=0, silence_logs=50,
    )  # fmt: skip
    client = distributed.Client(c)
    pids = set(client.run(os.getpid).values())
    try:
        yield c, client
    finally:
        pids |= {p.pid for p in _worker_processes(c)}
        client.close()
        c.close()
        for pid in pids:  # whatever the close left running, by its process id
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _worker_processes(c):
    out = []
    for nanny in c.workers.values():
        proc = getattr(getattr(nanny, "process", None), "process", None)
        if proc is not None and proc.pid:
            out.append(proc)
    return out


@pytest.mark.slow
def test_scheduler_run_gives_the_local_table(cluster, local_table, tmp_path):
    c, _ = cluster
    r = run_cli(*CONTRACT, "--scheduler", c.scheduler_address, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert_same_table(pd.read_csv(tmp_path / "sweep.csv"), pd.read_csv(local_table / "sweep.csv"))
    assert_same_table(pd.read_parquet(tmp_path / "sweep.parquet"), pd.read_parquet(local_table / "sweep.parquet"))


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_loses_no_finished_chunk(cluster, tmp_path):
    c, client = cluster
    args = ["--cell", "rnn", "--init", "gaussian", "--hidden-size", "48", "--seq-len", "150", "--x", "gain:0.5:2.5:12",
            "--measure", "lyapunov,decay_rate", "--chunk-size", "1", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "dist"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bptt_core", "sweep", *args, "--scheduler", c.scheduler_address, "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list((out / "chunks").glob("chunk-*.parquet"))) < 2:
            time.sleep(0.05)
        finished = {p.name: pd.read_parquet(p) for p in (out / "chunks").glob("chunk-*.parquet")}
        assert len(finished) >= 2, "no chunk finished in time"
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)  # a worker lost mid-sweep
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert len(finished) < 12, "the sweep had finished before the kill: nothing was tested"
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 12
    for frame in finished.values():  # every chunk finished before the kill is in the table, unchanged
        i = int(frame["row"].iloc[0])
        np.testing.assert_allclose(table.loc[i, ["lyapunov", "decay_rate"]].to_numpy(float),
                                   frame[["lyapunov", "decay_rate"]].to_numpy(float)[0], rtol=0, atol=0)  # fmt: skip
    spec = SweepSpec(ModelConfig(cell="rnn", init="gaussian", hidden_size=48, seq_len=150),
                       Axis("gain", 0.5, 2.5, 12), measures=("lyapunov", "decay_rate"), chunk_size=1)  # fmt: skip
    local = assemble(spec, [compute_chunk(spec, i) for i in (0, 11)])
    assert_same_table(table.iloc[[0, 11]].reset_index(drop=True), local)


def test_local_threads_give_the_same_bits_as_one():
    spec = SweepSpec(ModelConfig(hidden_size=12, seq_len=30, init="gaussian"), Axis("gain", 0.5, 2.5, 8),
                       measures=("lyapunov", "decay_rate"), chunk_size=2)  # fmt: skip
    one = assemble(spec, list(run_local(spec, workers=1).values()))
    many = assemble(spec, list(run_local(spec, workers=3).values()))
    pd.testing.assert_frame_equal(one, many, check_exact=True)
