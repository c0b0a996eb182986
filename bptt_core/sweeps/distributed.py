"""Running a sweep to files: here (threads) or on a Dask distributed cluster, chunk by chunk.

Every chunk (:meth:`bptt_core.sweeps.grid.SweepSpec.chunks`, a pure function of the spec) is written to
``DIR/chunks/`` the moment it arrives, so a cluster that loses a worker loses no finished chunk:
Dask reschedules a lost worker's chunks (``retries``), and a chunk that still fails is named in
:class:`SweepIncomplete`; running the same command again computes only the chunks not on disk.
When every chunk is there the table is assembled in grid order (``sweep.csv``, ``sweep.parquet``)
and the chunk folder removed. Each chunk is computed single-threaded with the same code wherever
it runs, so the cluster's table equals the local one.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pandas as pd

from .grid import SweepSpec
from .run import assemble, compute_chunk, run_local

CHUNK_RETRIES = 3  # extra attempts Dask makes for a chunk whose task raised
CONNECT_TIMEOUT_S = 5


class SweepIncomplete(RuntimeError):
    """Some chunks failed; the finished ones are on disk."""

    def __init__(self, failed: dict[int, str], folder: Path, done: int, total: int):
        self.failed, self.folder, self.done, self.total = failed, folder, done, total
        names = ", ".join(str(i) for i in sorted(failed))
        first = next(iter(failed.values()))
        super().__init__(
            f"{len(failed)} of {total} chunks failed (chunk {names}; first error: {first}). "
            f"The {done} finished chunks are kept in {folder}/; run the same command again to compute only the rest."
        )


def chunk_path(folder: Path, i: int) -> Path:
    return folder / f"chunk-{i:06d}.parquet"


def _prepare(spec: SweepSpec, out: Path) -> tuple[Path, set[int]]:
    """The chunk folder, and the chunks already finished there by an earlier run of the same spec."""
    folder = out / "chunks"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "spec.json"
    current = json.dumps(spec.to_dict(), sort_keys=True)
    if manifest.exists() and manifest.read_text() == current:
        n = len(spec.chunks())
        return folder, {i for i in range(n) if chunk_path(folder, i).exists()}
    for old in folder.glob("chunk-*.parquet"):  # another spec's chunks: not ours to reuse
        old.unlink()
    manifest.write_text(current)
    return folder, set()


def _writer(folder: Path):
    def write(i: int, frame: pd.DataFrame) -> None:
        tmp = folder / f".chunk-{i:06d}.tmp"
        frame.to_parquet(tmp, index=False)
        tmp.replace(chunk_path(folder, i))  # atomic: a chunk file on disk is always whole

    return write


def run_to_folder(spec: SweepSpec, out: Path, scheduler: str | None = None, progress=None, workers=None):
    """Compute every chunk not already on disk, write each as it arrives, then assemble the table."""
    folder, done = _prepare(spec, out)
    write = _writer(folder)
    if scheduler:
        run_distributed(spec, scheduler, write, progress, skip=done, folder=folder)
    else:
        run_local(spec, progress, write, skip=done, workers=workers)
    n = len(spec.chunks())
    frames = [pd.read_parquet(chunk_path(folder, i)) for i in range(n)]
    table = assemble(spec, frames)
    return table, folder


def check_scheduler_address(address: str) -> str:
    if not isinstance(address, str) or not address.startswith("tcp://") or ":" not in address[6:]:
        raise ValueError(f"scheduler must be tcp://HOST:PORT, got {address!r}")
    return address


def run_distributed(spec: SweepSpec, address: str, on_chunk, progress=None, skip=(), folder: Path | None = None):
    """Send the chunks to the Dask scheduler at ``address``; ``on_chunk(i, frame)`` as each finishes."""
    check_scheduler_address(address)
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as e:
        raise ValueError(f"scheduler: cannot reach the Dask scheduler at {address} ({type(e).__name__}: {e})") from None
    n = len(spec.chunks())
    todo = [i for i in range(n) if i not in set(skip)]
    run_id = uuid.uuid4().hex[:8]
    failed: dict[int, str] = {}
    done = n - len(todo)
    try:
        futures = {
            client.submit(compute_chunk, spec, i, key=f"bptt-sweep-{run_id}-{i}", retries=CHUNK_RETRIES, pure=False): i
            for i in todo
        }
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                frame = fut.result()
            except Exception as e:  # a chunk that failed every retry, or whose workers all died
                failed[i] = f"{type(e).__name__}: {e}"
                continue
            on_chunk(i, frame)
            done += 1
            if progress:
                progress(done, n)
    finally:
        client.close()
    if failed:
        raise SweepIncomplete(failed, folder or Path("."), done, n)


def finish(out: Path, folder: Path) -> None:
    """The table is written: the chunk files have served their purpose."""
    shutil.rmtree(folder, ignore_errors=True)
