"""The order/chaos boundary in a sweep: where the measured lambda_1 crosses 0, the mean-field line
chi_1 = 1 (Poole et al. 2016; :mod:`bptt_core.flow.theory`) and the distance between them, and the
edge-of-chaos gain of one network found by bisection."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from bptt_core.config import MAX_GAIN, check_float
from bptt_core.flow import theory
from bptt_core.sweeps.batched import measure_networks
from bptt_core.sweeps.grid import INT_AXES, Network, SweepSpec
from bptt_core.sweeps.phase import summarise


def zero_crossings(xs, ys) -> list[float]:
    """Where a sampled curve crosses 0, by linear interpolation between neighbouring samples."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    out = []
    for i in range(len(xs) - 1):
        a, b = ys[i], ys[i + 1]
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        if a == 0:
            out.append(float(xs[i]))
        elif a * b < 0:
            out.append(float(xs[i] + (xs[i + 1] - xs[i]) * a / (a - b)))
    if len(ys) and ys[-1] == 0:
        out.append(float(xs[-1]))
    return out


def measured_boundary(table: pd.DataFrame, along: str, other: str | None, level: float = 0.0) -> pd.DataFrame:
    """The first crossing of the seed-mean lambda_1 through ``level`` (log10 per step; 0: the zero
    contour) along ``along``, for each value of ``other`` (NaN where it does not cross)."""
    if "lyapunov" not in table:
        raise ValueError("measured_boundary needs the lyapunov measure in the table")
    rows = []
    groups = [(None, table)] if other is None else table.groupby(other, sort=True)
    for key, part in groups:
        s = summarise(part, [along], "lyapunov")
        cross = zero_crossings(s[along], s["mean"] - level)
        rows.append({other or "_": key, along: cross[0] if cross else float("nan")})
    frame = pd.DataFrame(rows)
    return frame.drop(columns="_") if other is None else frame


GAIN_AXES = ("gain", "spectral_radius")  # spectral_radius stands for g by the circular law (rho -> g)


@dataclass
class TheoryLine:
    """The mean-field boundary chi_1 = 1 in the sweep's coordinates, or why there is none."""

    gain_axis: str | None  # the axis the boundary is a value of
    other_axis: str | None  # the axis it is drawn along (None: one value)
    frame: pd.DataFrame | None  # columns other_axis (if any) and gain_axis
    reason: str | None = None  # why no line (theory does not apply)


def theory_line(spec: SweepSpec, samples: int = 25) -> TheoryLine:

    b = spec.base
    why = theory.applies(b.cell, b.activation, b.init, b.task)
    names = [a.name for a in spec.axes]
    gain_axes = [n for n in names if n in GAIN_AXES and not (n == "gain" and b.spectral_radius > 0)]
    if why is None and not gain_axes:
        why = "the mean-field line is a gain; sweep gain (or spectral_radius) on one axis to see it"
    if why is None and len(gain_axes) == 2:
        why = "gain and spectral_radius on both axes: the spectral radius overrides the gain"
    if why is not None:
        return TheoryLine(None, None, None, why)
    gain_axis = gain_axes[0]
    other = next((a for a in spec.axes if a.name != gain_axis), None)
    if other is None:
        frame = pd.DataFrame(
            {gain_axis: [theory.boundary_gain(*theory.sweep_variances(spec.input_scale, spec.bias_scale))]}
        )
        return TheoryLine(gain_axis, None, frame)
    values = np.linspace(other.start, other.stop, samples if other.name not in INT_AXES else other.count)
    gains = []
    for v in values:
        scales = {"input_scale": spec.input_scale, "bias_scale": spec.bias_scale}
        if other.name in scales:
            scales[other.name] = float(v)
        gains.append(theory.boundary_gain(*theory.sweep_variances(scales["input_scale"], scales["bias_scale"])))
    return TheoryLine(gain_axis, other.name, pd.DataFrame({other.name: values, gain_axis: gains}))


def theory_distance(table: pd.DataFrame, line: TheoryLine) -> dict | None:
    """How far the measured boundary (seed-mean lambda_1 = 0, first crossing along the gain axis) lies
    from the mean-field one: mean and largest |difference| in gain over the rows where both exist."""
    if line.frame is None or "lyapunov" not in table:
        return None
    measured = measured_boundary(table, line.gain_axis, line.other_axis)
    if line.other_axis is None:
        theory_g = np.full(len(measured), float(line.frame[line.gain_axis].iloc[0]))
    else:
        theory_g = np.interp(measured[line.other_axis], line.frame[line.other_axis], line.frame[line.gain_axis])
    diff = np.abs(measured[line.gain_axis].to_numpy() - theory_g)
    ok = np.isfinite(diff)
    if not ok.any():
        return {"rows": 0, "mean": math.nan, "max": math.nan, "measured": measured}
    return {"rows": int(ok.sum()), "mean": float(diff[ok].mean()), "max": float(diff[ok].max()), "measured": measured}


@dataclass
class Edge:
    gain: float  # where lambda_1 crosses 0
    lyapunov: float  # lambda_1 there, log10 per step
    steps: int  # bisection steps taken (each an exact lambda_1)
    bracket: tuple[float, float]  # final bracket [gain with lambda_1 < 0, gain with lambda_1 > 0]


def lyapunov_at(net: Network, burn_in: int = 0) -> float:
    """lambda_1 (log10 per step) of one network, exactly as the Spectrum page computes it."""
    with torch.no_grad():
        return measure_networks([net], ("lyapunov",), burn_in=burn_in)[0]["lyapunov"]


def edge_of_chaos(net: Network, lo: float = 0.1, hi: float = 4.0, tol: float = 1e-3, max_steps: int = 60) -> Edge:
    """The gain where lambda_1 crosses 0 for this network's cell, input and seed, by bisection.

    Every step computes lambda_1 exactly at the midpoint; stops once |lambda_1| <= ``tol`` (log10
    per step) or the bracket is 1e-9 wide. ValueError when lambda_1 has the same sign at both ends."""
    if net.cfg.spectral_radius > 0:
        raise ValueError("spectral_radius must be 0 for the edge finder: it varies the gain, which a set rho overrides")
    check_float("lo", lo, 0.0, MAX_GAIN, lo_open=True)
    check_float("hi", hi, lo, MAX_GAIN, lo_open=True)
    check_float("tol", tol, 0.0, 1.0, lo_open=True)

    def lam(g):
        return lyapunov_at(replace(net, cfg=replace(net.cfg, gain=g)))

    f_lo, f_hi = lam(lo), lam(hi)
    if not (f_lo < 0 < f_hi):
        raise ValueError(
            f"gain: lambda_1 does not cross 0 between gain {lo:g} ({f_lo:+.4g}) and {hi:g} ({f_hi:+.4g}) "
            "log10 per step; widen the range"
        )
    best = (lo, f_lo) if abs(f_lo) < abs(f_hi) else (hi, f_hi)
    steps = 0
    while steps < max_steps and abs(best[1]) > tol and hi - lo > 1e-9:
        mid = 0.5 * (lo + hi)
        f = lam(mid)
        steps += 1
        if abs(f) < abs(best[1]):
            best = (mid, f)
        if f < 0:
            lo = mid
        else:
            hi = mid
    return Edge(best[0], best[1], steps, (lo, hi))
