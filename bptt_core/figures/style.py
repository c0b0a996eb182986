"""The one look of every figure: the template, the fonts, the export config (PNG or SVG at 3x, no logo)
and the lecture scale, so the dashboard, the command line and the HTML report look alike."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import plotly.io

# Plotly serialises figures with orjson when it is installed, handing it numpy arrays whole; orjson
# before 3.9.6 kept a reference to every array of a dtype it refuses (ijl/orjson#422), such as the
# object arrays of hover strings every heatmap has: a server kept each figure it drew or put in a
# report (~0.1 MiB a rerun, bench/bench_load.py). requirements.txt pins a fixed orjson; with an older
# one installed, Plotly's own json engine is used instead.
ORJSON_FIXED = (3, 9, 6)


def json_engine_for(orjson_version: str | None) -> str:
    """Plotly's JSON engine for the installed orjson (None: not installed)."""
    if orjson_version is None:
        return "auto"
    release = tuple(int(part) for part in re.findall(r"\d+", orjson_version)[:3])
    return "json" if release < ORJSON_FIXED else "auto"


def serialise_figures_safely() -> str:
    """Set Plotly's JSON engine for the installed orjson (done once on import); the engine."""
    try:
        import orjson

        version = orjson.__version__
    except ImportError:
        version = None
    plotly.io.json.config.default_engine = json_engine_for(version)
    return plotly.io.json.config.default_engine


FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


# A small template in plotly_white's style. The full plotly_white (dozens of trace types, every
# axis kind) made each figure deep-copy and re-validate a large object: most of its build time.
_GRID = "#e5e9f0"


_AXIS = dict(gridcolor=_GRID, linecolor=_GRID, zerolinecolor=_GRID, zerolinewidth=1.5, ticks="", automargin=True,
             title=dict(standoff=12))  # fmt: skip


TEMPLATE = go.layout.Template(
    layout=dict(
        paper_bgcolor="white",
        plot_bgcolor="white",
        font=dict(family=FONT, size=14, color="#2a3f5f"),
        title=dict(font=dict(size=17), x=0.0, xanchor="left"),
        margin=dict(l=70, r=30, t=60, b=60),
        colorway=["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"],
        hoverlabel=dict(align="left"),
        xaxis=_AXIS,
        yaxis=_AXIS,
    )
)


LECTURE_SCALE = 1.5  # type size multiplier for a projector


# The Plotly modebar: PNG export at 3x scale, no logo. SVG export is the same button with
# format "svg"; pages offer it through the config's second variant.
PLOTLY_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 3, "filename": "bptt-explorer"},
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}


PLOTLY_CONFIG_SVG = {
    **PLOTLY_CONFIG,
    "toImageButtonOptions": {"format": "svg", "scale": 3, "filename": "bptt-explorer"},
}


HEAT_COLORSCALE = "RdBu_r"  # diverging around 1 (log10 = 0): blue vanishes, red explodes


def style(fig: go.Figure, lecture: bool = False, height: int | None = None) -> go.Figure:
    """Apply the shared template (and the projector scale) to any figure."""
    fig.update_layout(template=TEMPLATE)
    if height:
        fig.update_layout(height=height)
    if lecture:
        fig.update_layout(
            font=dict(size=round(14 * LECTURE_SCALE)), title=dict(font=dict(size=round(17 * LECTURE_SCALE)))
        )
        # subplot titles, diagram labels and line labels are annotations, which keep their own size
        fig.update_annotations(font_size=round(14 * LECTURE_SCALE))
    return fig


serialise_figures_safely()  # once, when the first figure module loads (see the function)
