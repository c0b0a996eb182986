"""Sweeps in chunks on a cluster (bptt_core.sweeps.distributed): a rerun computes only the missing chunks;
a real Dask cluster gives the local table and loses no finished chunk when a worker is killed.

The cluster is ``distributed.LocalCluster`` with two worker processes on 127.0.0.1, started here and
stopped by its process ids at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from bptt_core.config import ModelConfig
from bptt_core.sweeps.distributed import chunk_path, run_to_folder
from bptt_core.sweeps.grid import Axis, SweepSpec
from bptt_core.sweeps.run import assemble, compute_chunk, sweep
from tests.helpers.sweep_cli import CONTRACT, ROOT, assert_same_table, run_cli


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
