"""Compare mode: two configurations A and B, and the differences that mean something between them.

Plain numpy on the numbers the analyses already produce (no torch): the log10 ratio of two
gradient-flow matrices L_B - L_A = log10(||dh_t/dh_s||_B / ||dh_t/dh_s||_A) on the steps both have,
one colour range for side-by-side heatmaps, the two gradient-norm histories on common steps, and
metrics as A, B and B - A. Identical inputs give differences that are exactly zero (never a rounding
residue, never NaN from inf - inf).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _as_matrix(name: str, L) -> np.ndarray:
    L = np.asarray(L, dtype=float)
    if L.ndim != 2 or L.shape[0] != L.shape[1] or L.shape[0] < 1:
        raise ValueError(f"{name} must be a square (T, T) matrix with T >= 1, got shape {L.shape}")
    return L


def common_steps(L_a, L_b) -> int:
    """How many steps both matrices have: the comparison covers t, s < min(T_A, T_B)."""
    return min(_as_matrix("L_a", L_a).shape[0], _as_matrix("L_b", L_b).shape[0])


def difference(a, b) -> np.ndarray:
    """b - a elementwise, exactly 0 where the two are identical (inf == inf included); NaN where either
    is NaN (a cell that does not exist, s > t)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        d = b - a
    d[a == b] = 0.0  # equal infinities: no change, where inf - inf would say NaN
    d[np.isnan(a) | np.isnan(b)] = np.nan
    return d


def log_ratio(L_a, L_b) -> np.ndarray:
    """(T, T) with T the common steps: L_B[t, s] - L_A[t, s], the log10 of the norm ratio B / A.

    Positive where B carries more gradient from s to t than A. -inf or +inf where only one side's
    product is exactly zero; NaN for s > t.
    """
    T = common_steps(L_a, L_b)
    return difference(np.asarray(L_a, dtype=float)[:T, :T], np.asarray(L_b, dtype=float)[:T, :T])


def history_difference(hist_a: pd.DataFrame, hist_b: pd.DataFrame, column: str = "grad_norm") -> pd.DataFrame:
    """Two training histories on the steps both ran: step, A, B and log10(B / A) of ``column``.

    A step that only one run reached (the other stopped, e.g. diverged) is left out of the difference.
    """
    for name, h in (("hist_a", hist_a), ("hist_b", hist_b)):
        if not isinstance(h, pd.DataFrame) or "step" not in h or column not in h:
            raise ValueError(f"{name} must be a training history with columns 'step' and {column!r}")
    m = pd.merge(hist_a[["step", column]], hist_b[["step", column]], on="step", suffixes=("_a", "_b"))
    a, b = m[f"{column}_a"].to_numpy(float), m[f"{column}_b"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        la, lb = np.log10(a), np.log10(b)
    return pd.DataFrame({"step": m["step"].to_numpy(), "A": a, "B": b, "log10 B/A": difference(la, lb)})


def metrics_table(metrics_a: dict, metrics_b: dict) -> pd.DataFrame:
    """One row per metric both sides have (A's order): metric, A, B, B − A (exactly 0 when equal).

    None (a metric that does not exist for that model, e.g. no memory horizon) is NaN in the table.
    """
    if not isinstance(metrics_a, dict) or not isinstance(metrics_b, dict):
        raise ValueError("metrics_a and metrics_b must be dicts of metric name -> number")
    names = [k for k in metrics_a if k in metrics_b]
    a = np.asarray([math.nan if metrics_a[k] is None else float(metrics_a[k]) for k in names], dtype=float)
    b = np.asarray([math.nan if metrics_b[k] is None else float(metrics_b[k]) for k in names], dtype=float)
    return pd.DataFrame({"metric": names, "A": a, "B": b, "B − A": difference(a, b)})


# -- compare mode: Spectrum, Truncated BPTT, Clipping (the pages' headline numbers) --------------------


def spectrum_metrics(spec, lyapunov_log10) -> dict:
    """The Spectrum page's headline numbers, by name: ρ, σ₁, γσ₁ (Pascanu et al. 2013) and the top
    Lyapunov exponent λ₁ in log10 per step (None when there is none; -inf stays -inf: a collapsed
    direction, equal on both sides gives a difference of exactly 0)."""
    lam = np.asarray(lyapunov_log10, dtype=float)
    return {
        "spectral radius ρ": float(spec.rho),
        "largest singular value σ₁": float(spec.sigma1),
        "γσ₁ (Pascanu)": float(spec.gamma * spec.sigma1),
        "top Lyapunov λ₁ (log10 per step)": float(lam[0]) if lam.size else None,
    }


def truncation_metrics(view) -> dict:
    """The Truncated BPTT page's numbers for one TBPTT(k1, k2) view (bptt_core.report.panels.TruncationView):
    the updates per sequence, the dropped fraction of the pairs s ≤ t, and log10 of the largest dropped
    norm (None when nothing is dropped)."""
    return {
        "updates per sequence": view.updates,
        "pairs (t, s) dropped (fraction)": view.dropped_fraction,
        "largest dropped log10 ‖∂h(t)/∂h(s)‖": view.largest_dropped,
    }


def twin_metrics(history: pd.DataFrame, diverged_at, first_clip) -> dict:
    """One training run's numbers (a Clipping twin): the divergence step, the first clip, how many
    steps clipping changed the gradient, the final loss (None where one does not exist: a run that
    never diverged has no divergence step)."""
    if not isinstance(history, pd.DataFrame) or not {"loss", "clipped"} <= set(history.columns):
        raise ValueError("history must be a training history with columns 'loss' and 'clipped'")
    return {
        "divergence step": diverged_at,
        "first clip (step)": first_clip,
        "clip count": int(history["clipped"].sum()),
        "final loss": float(history["loss"].iloc[-1]) if len(history) else None,
    }


def twins_metrics_table(runs_a: dict, runs_b: dict) -> pd.DataFrame:
    """Every twin both sides trained (``runs``: twin -> dict with history, diverged_at, first_clip, as
    the dashboard keeps them): one row per twin and metric, with A, B and B − A."""
    tables = []
    for twin in [k for k in runs_a if k in runs_b]:
        a, b = runs_a[twin], runs_b[twin]
        m_a = twin_metrics(a["history"], a["diverged_at"], a["first_clip"])
        m_b = twin_metrics(b["history"], b["diverged_at"], b["first_clip"])
        tables.append(metrics_table(m_a, m_b).assign(run=twin))
    if not tables:
        raise ValueError("runs_a and runs_b share no twin")
    out = pd.concat(tables, ignore_index=True)
    return out[["run", "metric", "A", "B", "B − A"]]
