"""Running a sweep: chunks of the grid measured single-threaded (a pure function of the spec, so any
machine computing a chunk gets the same bits), here in threads, and the table assembled."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import pandas as pd

from bptt_core.resources import single_thread
from bptt_core.sweeps.batched import measure_networks
from bptt_core.sweeps.grid import SweepSpec

Progress = Callable[[int, int], None]  # progress(chunks done, chunks in all)


def compute_chunk(spec: SweepSpec, index: int) -> pd.DataFrame:
    """The rows of chunk ``index``: axis values, seed, then one column per measure."""
    rows = spec.rows()
    chunk = spec.chunks()[index]
    part = [rows[i] for i in chunk]
    nets = [spec.network(**{k: v for k, v in r.items()}) for r in part]
    with single_thread():
        vals = measure_networks(nets, spec.measures, (spec.train_task, spec.train_steps, spec.train_lr), spec.burn_in)
    frame = pd.DataFrame([{**r, **v} for r, v in zip(part, vals, strict=True)])
    frame.insert(0, "row", list(chunk))
    return frame


def table_columns(spec: SweepSpec) -> list[str]:
    return [a.name for a in spec.axes] + ["seed", *spec.measures]


def assemble(spec: SweepSpec, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunk frames in table order, columns axis settings, seed, measures."""
    table = pd.concat(frames, ignore_index=True).sort_values("row").reset_index(drop=True)
    return table[table_columns(spec)]


def run_local(spec: SweepSpec, progress: Progress | None = None, on_chunk=None, skip=(), workers: int | None = None):
    """Compute every chunk in this process (threads, one torch thread each); ``on_chunk(i, frame)``
    is called as each finishes, ``progress(done, total)`` after it. Returns the frames by index."""
    n = len(spec.chunks())
    todo = [i for i in range(n) if i not in set(skip)]
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    frames: dict[int, pd.DataFrame] = {}
    done = n - len(todo)

    def finished(i: int, frame) -> None:
        nonlocal done
        frames[i] = frame
        done += 1
        if on_chunk:
            on_chunk(i, frame)
        if progress:
            progress(done, n)

    if workers == 1 or len(todo) <= 1:
        for i in todo:
            finished(i, compute_chunk(spec, i))
        return frames
    with ThreadPoolExecutor(workers) as pool:
        futs = {pool.submit(compute_chunk, spec, i): i for i in todo}
        for fut in as_completed(futs):
            finished(futs[fut], fut.result())
    return frames


def sweep(spec: SweepSpec, progress: Progress | None = None) -> pd.DataFrame:
    """The whole table, computed here: one row per grid point and seed."""
    return assemble(spec, list(run_local(spec, progress).values()))
