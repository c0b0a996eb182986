"""One figure of every builder, drawn from small known inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bptt_core.figures.heatmaps import gradient_flow_heatmap
from bptt_core.figures.profiles import contributions_figure, lag_profile_figure, loss_gradient_figure
from bptt_core.figures.spectra import eigenvalue_figure, lyapunov_figure, singular_values_figure
from bptt_core.figures.training import (
    comparison_figure,
    dh_heatmap_figure,
    grad_norm_history_figure,
    loss_history_figure,
)


def arr(v) -> np.ndarray:
    return np.asarray(v, dtype=float)


def _every_figure():
    L = np.full((6, 6), np.nan)
    for t in range(6):
        for s in range(t + 1):
            L[t, s] = -0.5 * (t - s)
    prof = -0.5 * np.arange(6.0)
    hist = pd.DataFrame(
        dict(step=range(5), loss=[3.0, 2.0, 1.0, 0.5, 0.2], grad_norm=[0.5, 2.0, 8.0, 0.3, 0.1],
             grad_norm_clipped=[0.5, 1.0, 1.0, 0.3, 0.1], clipped=[False, True, True, False, False], nonfinite=[False] * 5)
    )  # fmt: skip
    ev = np.array([0.5 + 0.5j, 0.5 - 0.5j, -0.9])
    df = pd.DataFrame(dict(variant=["full BPTT", "TBPTT(2, 2)", "RTRL"], memory_bytes=[100, 40, 900],
                           time_per_update_s=[1e-3, 5e-4, 1e-2], cosine=[1.0, 0.9, 1.0]))  # fmt: skip
    return {
        "heatmap": gradient_flow_heatmap(L),
        "lag heatmap": gradient_flow_heatmap(L, norm=2, lag=True),
        "lag profile": lag_profile_figure(prof, rate=-0.5, gamma_sigma1=0.5, horizon=4),
        "dL/dh": loss_gradient_figure(np.array([1e-9, 1e-5, 1.0])),
        "contributions": contributions_figure(np.array([1e-30, 1e-3, 2.0]), 2),
        "eigenvalues": eigenvalue_figure(ev, 0.9),
        "singular values": singular_values_figure(np.array([2.0, 1.0, 0.5]), 0.25),
        "lyapunov": lyapunov_figure(np.array([0.1, -0.5, -np.inf]), -0.4),
        "grad norms": grad_norm_history_figure({"unclipped": hist, "norm": hist}, 1.0, {"unclipped": 4}),
        "loss": loss_history_figure({"unclipped": hist}),
        "dh heatmap": dh_heatmap_figure(np.array([[1.0, 1e-3], [np.inf, 0.0]])),
        "comparison": comparison_figure(df),
    }
