"""The phase diagram of a sweep table: one measure over one or two swept settings, with the measured
lambda_1 = 0 boundary and the mean-field line (a :class:`bptt_core.sweeps.boundary.TheoryLine`), and the
summary of a measure over seeds it is drawn from."""

from __future__ import annotations

import pandas as pd

from bptt_core.figures.phase import phase_diagram


def phase_figure(table: pd.DataFrame, axes: list[str], measure: str, stat: str = "mean", seeds: int = 1,
                 line=None, edge: float | None = None):  # fmt: skip
    """The phase diagram of a sweep's table: ``measure``'s seed mean (``stat="mean"``) or spread
    (``"std"``) at every grid point, the measured lambda_1 = 0 contour (two axes, when the table has
    lambda_1), the mean-field ``line`` and the edge finder's gain. The page and the command line draw this."""

    if stat not in ("mean", "std"):
        raise ValueError(f"stat must be 'mean' or 'std'; got {stat!r}")
    x, y = axes[0], axes[1] if len(axes) > 1 else None
    summary = summarise(table, axes, measure)
    if stat == "std":  # the one-axis curve is drawn from the mean column: it shows the spread instead
        summary = summary.assign(mean=summary["std"])
    lyap = summarise(table, axes, "lyapunov") if "lyapunov" in table and y is not None else None
    drawn = line is not None and line.frame is not None
    return phase_diagram(
        summary, x, y, measure, stat, lyapunov=lyap,
        theory=line.frame if drawn else None, theory_axes=(line.gain_axis, line.other_axis) if drawn else None,
        edge=edge, seeds=seeds,
    )  # fmt: skip


def summarise(table: pd.DataFrame, axes: list[str], measure: str) -> pd.DataFrame:
    """Mean and spread (standard deviation over seeds, 0 for one seed) of a measure at every grid point."""
    g = table.groupby(axes, sort=True)[measure]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
