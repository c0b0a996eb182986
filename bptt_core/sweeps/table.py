"""A sweep table read back from a user's file (the Phase diagram's "Open a sweep file"), checked before use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bptt_core.sweeps.grid import AXES, INT_AXES, MAX_SWEEP_NETWORKS, MEASURES

MAX_SWEEP_FILE_BYTES = 50 * 2**20


@dataclass
class SweepFile:
    """A table written by ``python -m bptt_core sweep``: its axes (in --x, --y order) and measures."""

    table: pd.DataFrame
    axes: list[str]
    measures: list[str]


def read_sweep_csv(data: bytes, name: str = "sweep.csv") -> SweepFile:
    """Read and check a sweep.csv: axis columns, then ``seed``, then measure columns (ValueError
    naming what is wrong)."""
    import io

    if len(data) > MAX_SWEEP_FILE_BYTES:
        raise ValueError(f"{name}: {len(data) / 2**20:.1f} MiB is over the {MAX_SWEEP_FILE_BYTES >> 20} MiB limit")
    try:
        table = pd.read_csv(io.BytesIO(data), float_precision="round_trip")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ValueError(f"{name}: not a CSV table ({type(e).__name__})") from None
    cols = list(table.columns)
    if "seed" not in cols:
        raise ValueError(f"{name}: no 'seed' column; a sweep table has the axis settings, seed, then the measures")
    k = cols.index("seed")
    axes, measures = cols[:k], cols[k + 1 :]
    if not 1 <= len(axes) <= 2 or any(a not in AXES for a in axes):
        raise ValueError(f"{name}: the columns before 'seed' must be one or two of {', '.join(AXES)}; got {axes}")
    bad = [m for m in measures if m not in MEASURES]
    if bad or not measures:
        raise ValueError(f"{name}: the columns after 'seed' must be measures ({', '.join(MEASURES)}); got {measures}")
    if len(table) > MAX_SWEEP_NETWORKS:
        raise ValueError(f"{name}: {len(table)} rows is over the limit of {MAX_SWEEP_NETWORKS}")
    for c in cols:
        if not pd.api.types.is_numeric_dtype(table[c]):
            raise ValueError(f"{name}: column {c!r} must hold numbers")
    if table[axes + ["seed"]].isna().any().any() or not np.isfinite(table[axes].to_numpy(float)).all():
        raise ValueError(f"{name}: the axis and seed columns must be finite numbers in every row")
    if table.duplicated(axes + ["seed"]).any():
        raise ValueError(f"{name}: a grid point and seed appears twice")
    return SweepFile(table, axes, measures)


def whole_count(name: str, lo, hi, points: int) -> int:
    """For hidden units and sequence length, the most points (up to ``points``) with whole-number steps."""
    if name not in INT_AXES or lo == hi:
        return points if lo != hi else 1
    span = abs(int(hi) - int(lo))
    return next(c for c in range(min(points, span + 1), 1, -1) if span % (c - 1) == 0)
