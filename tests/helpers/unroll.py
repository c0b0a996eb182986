"""The small models and sequences the click-to-unroll tests unroll."""

from __future__ import annotations

import torch

from tests.helpers.cells import recurrent_cells

I, H, T = 3, 4, 7
CELLS = recurrent_cells(I, H)


def _model(name: str, gain: float = 1.5):
    torch.manual_seed(0)
    rnn = CELLS[name]().double()
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(gain)  # some growth and some saturation, not only decay
    return rnn


def _x(seed: int = 1, length: int = T):
    return torch.randn(length, I, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _event(*points):
    """What st.plotly_chart(on_select="rerun", selection_mode="points") returns (Streamlit 1.67's schema)."""
    return {"selection": {"points": list(points), "point_indices": [], "box": [], "lasso": []}}
