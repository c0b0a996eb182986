"""What a click on a chart means: Streamlit's selection event read into the cell or point it names.

A click comes back from the browser as Streamlit's selection (``{"selection": {"points": [...]}}``,
Plotly's click event with snake-case keys); these functions read it into the library's own terms
(a 0-indexed (t, s) of the gradient-flow matrix, a grid point of a sweep) and refuse what is not one.
"""

from __future__ import annotations

from bptt_core.config import check_int
from bptt_core.sweeps.grid import INT_AXES


def heatmap_cell(t_step, s_step, T: int) -> tuple[int, int]:
    """The 0-indexed (t, s) of a heatmap point labelled with 1-indexed steps (y = t_step, x = s_step)."""
    t = check_int("t (1-indexed step on the heatmap)", t_step, 1, T) - 1
    s = check_int("s (1-indexed step on the heatmap)", s_step, 1, T) - 1
    if s > t:
        raise ValueError(f"s must not exceed t: d h_t/d h_s is defined for s <= t, got t={t + 1}, s={s + 1}")
    return t, s


def selected_cell(selection, T: int, lag: bool = False) -> tuple[int, int] | None:
    """The 0-indexed (t, s) of the heatmap cell a user clicked, or None when nothing is selected.

    ``selection``: what ``st.plotly_chart(fig, on_select="rerun", selection_mode="points")`` returns
    (its ``selection``, or the whole event): a mapping with ``points``, a list of dicts each holding
    the clicked point's axis values ``x`` and ``y`` (Plotly's click event, keys in snake case, e.g.
    ``{"curve_number": 0, "point_number": [5, 2], "x": 3, "y": 6, "z": -0.4}``). The last point
    counts. On :func:`bptt_core.figures.heatmaps.gradient_flow_heatmap` y is the 1-indexed target step t and x
    the 1-indexed source step s, or, with ``lag=True`` (the (t, k) view), the lag k = t - s.
    A point outside the lower triangle raises ValueError naming t and s.
    """
    if selection is None:
        return None
    sel = selection.get("selection", selection) if hasattr(selection, "get") else None
    points = sel.get("points") if hasattr(sel, "get") else None
    if not points:
        return None
    point = points[-1]
    if not hasattr(point, "get") or point.get("x") is None or point.get("y") is None:
        raise ValueError(f"selection point must hold the clicked cell's x and y, got {point!r:.80}")
    x, y = point["x"], point["y"]
    if lag:
        t_step = check_int("t (1-indexed step on the heatmap)", y, 1, T)
        k = check_int("k (lag on the heatmap)", x, 0, T - 1)
        if k >= t_step:
            raise ValueError(f"the lag k must be below t: d h_t/d h_(t-k) needs t - k >= 1, got t={t_step}, k={k}")
        return heatmap_cell(t_step, t_step - k, T)
    return heatmap_cell(y, x, T)


def selected_point(event, axes):
    """The axis values of the clicked point, or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event is not None else []
    if not points:
        return None
    p = points[0]
    out = {axes[0]: p.get("x")}
    if len(axes) > 1:
        out[axes[1]] = p.get("y")
    if any(v is None for v in out.values()):
        return None
    return {k: int(round(v)) if k in INT_AXES else float(v) for k, v in out.items()}
