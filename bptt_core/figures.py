"""Plotly figure builders: each takes plain numbers and returns a ``go.Figure``.

One template and one export config for every figure, so the dashboard, the command line and the
HTML report look alike: log colour bars with decade tick labels (1e-6, 1e-3, 1, ...), the raw
value in the hover, and the theory drawn on the picture.
"""

from __future__ import annotations

import math
import re

import numpy as np
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


serialise_figures_safely()

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


def threshold_label(x: float) -> str:
    """A threshold as the controls write it: 1e-3, 1e-6, 0.5 (one spelling everywhere)."""
    e = math.floor(math.log10(x)) if x > 0 else 0
    if x > 0 and abs(x - 10**e) <= 1e-12 * x and not 0 <= e <= 3:
        return f"1e{e}"
    return f"{x:g}"


def fmt_power(x: float) -> str:
    """1e-06-style label for a raw value (never rounds 1e-120 to 0)."""
    if not math.isfinite(x):
        return "0" if x == 0 else str(x)
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.3e}"


def decade_ticks(lo: float, hi: float, max_ticks: int = 9) -> tuple[list[float], list[str]]:
    """Tick positions (in log10 units) at whole decades from lo to hi, labelled 1e-6, 1e-3, 1, ..."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0], ["1"]
    a, b = math.floor(lo), math.ceil(hi)
    step = max(1, math.ceil((b - a) / max_ticks))
    start = math.floor(a / step) * step
    vals = list(range(start, b + 1, step))
    return [float(v) for v in vals], [decade_label(v) for v in vals]


def decade_label(v: int) -> str:
    return "1" if v == 0 else ("10" if v == 1 else f"1e{v:+d}".replace("+", ""))


def log_ticks(lo: float, hi: float, max_ticks: int = 9) -> tuple[list[float], list[str]]:
    """Readable ticks (log10 units) for any range [lo, hi] of log10 values, labelled by raw value.

    Two or more whole decades inside: the decades (1e-6, 1e-3, 1, ...). Fewer: 1-2-5 steps (0.2, 0.5,
    1, 2, 5); still fewer than three: evenly spaced raw values (0.98, 1, 1.02), with as many digits as
    it takes to tell them apart. Exact at any magnitude: raw values are never formed beyond a mantissa.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0], ["1"]
    if math.floor(hi) - math.ceil(lo) + 1 >= 2:
        return decade_ticks(lo, hi, max_ticks)
    e0 = math.floor(lo)
    one_two_five = [
        e + math.log10(m)
        for e in range(e0, math.ceil(hi) + 1)
        for m in (1, 2, 5)
        if lo - 1e-12 <= e + math.log10(m) <= hi + 1e-12
    ]
    if len(one_two_five) >= 3:
        return one_two_five, _distinct_raw_labels(one_two_five)
    a, b = 10 ** (lo - e0), 10 ** (hi - e0)  # mantissas in [1, 100): exact, whatever e0 is
    if b - a <= 1e-12 * a:
        return [lo], _distinct_raw_labels([lo])
    step = _nice_step((b - a) / 4)
    marks = np.arange(math.ceil(a / step) * step, b + step * 1e-9, step)
    vals = [e0 + math.log10(m) for m in marks if m > 0]
    return vals, _distinct_raw_labels(vals)


def _nice_step(raw: float) -> float:
    """The largest 1-2-5 number up to ``raw``: a step people read at a glance."""
    e = math.floor(math.log10(raw))
    return max(m * 10**e for m in (1, 2, 5) if m * 10**e <= raw * (1 + 1e-12))


def _distinct_raw_labels(vals_log10: list[float]) -> list[str]:
    """Raw-value labels for log10 positions, with the fewest significant digits that tell them apart."""
    for digits in range(3, 13):
        labels = [_raw_text(v, digits) for v in vals_log10]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _raw_text(v: float, digits: int) -> str:
    """10**v to ``digits`` significant digits: plain between 1e-3 and 1e4, else mantissa e exponent."""
    if -3 <= v < 4:
        txt = f"{10**v:.{digits}g}"
        if "e" not in txt:
            return txt
    e = math.floor(v)
    m = float(f"{10 ** (v - e):.{digits}g}")
    if m >= 10:
        m, e = m / 10, e + 1
    return f"{m:.{digits}g}e{e}"


def _log_hover_text(L: np.ndarray) -> np.ndarray:
    """Raw-value strings for a matrix of log10 values (exact even where 10**L under/overflows)."""
    L = np.asarray(L, dtype=float)
    out = np.full(L.shape, "", dtype=object)
    fin = np.isfinite(L)
    e = np.floor(L[fin])
    m = 10 ** (L[fin] - e)
    up = m >= 9.9995  # would print as 10.000e..: carry into the exponent
    m, e = np.where(up, m / 10, m), np.where(up, e + 1, e)
    out[fin] = [f"{a:.3f}e{int(b):+d}" for a, b in zip(m.tolist(), e.tolist(), strict=True)]
    out[np.isneginf(L)] = "0 (exactly)"
    out[np.isposinf(L)] = "inf (overflow)"
    return out


def centred_colorscale(lo: float, hi: float, n: int = 11, centre: float = 0.0) -> list:
    """The part of the diverging scale that [lo, hi] covers when ``centre`` (a log10 value: 0 is a
    norm of 1) is its white middle: data all above it are only red, all below only blue, never
    recentred on the data's own range."""
    from plotly.colors import sample_colorscale

    m = max(abs(lo - centre), abs(hi - centre), 1e-12)
    a, b = (lo - centre + m) / (2 * m), (hi - centre + m) / (2 * m)
    pts = np.linspace(a, b, n)
    return [[i / (n - 1), c] for i, c in enumerate(sample_colorscale(HEAT_COLORSCALE, pts.tolist()))]


def log_heatmap(
    Z: np.ndarray,
    *,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    title: str,
    x_title: str,
    y_title: str,
    colorbar_title: str,
    hover_x: str = "x",
    hover_y: str = "y",
    hover_value: str = "value",
    mask: np.ndarray | None = None,
    centre: float = 0.0,
    zrange: tuple[float, float] | None = None,
) -> go.Figure:
    """Heatmap of log10 values Z with a decade-labelled colour bar; the hover shows the raw value.

    ``mask``: where True, the cell is shown hatched grey (e.g. what truncation drops).
    ``centre``: the log10 value drawn white (0: a norm of 1).
    -inf (exact zero) cells are shown as the bottom of the scale and said so in the hover.
    ``zrange``: (zmin, zmax) of the colour scale, e.g. one range shared by side-by-side heatmaps
    (:func:`bptt_core.compare.shared_range`); by default the data's own.
    """
    Z = np.asarray(Z, dtype=float)
    finite = Z[np.isfinite(Z)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if zrange is not None:  # one colour range for several heatmaps (compare, or a run's logged steps)
        z0, z1 = (float(v) for v in zrange)
        if not (math.isfinite(z0) and math.isfinite(z1) and z0 < z1):
            raise ValueError(f"zrange must be two finite numbers zmin < zmax, got {zrange!r}")
        lo, hi = min(lo, z0), max(hi, z1)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05  # a constant matrix (an orthogonal linear RNN): a narrow, ticked bar
    shown = np.where(np.isneginf(Z), lo, np.where(np.isposinf(Z), hi, Z))
    if mask is not None:
        shown = np.where(mask, np.nan, shown)
    tickvals, ticktext = log_ticks(lo, hi)
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=x,
            y=y,
            colorscale=centred_colorscale(lo, hi, centre=centre),
            zmin=lo,
            zmax=hi,
            customdata=_log_hover_text(Z),
            hovertemplate=f"{hover_y} = %{{y}}<br>{hover_x} = %{{x}}<br>{hover_value} = %{{customdata}}<extra></extra>",
            colorbar=dict(title=dict(text=colorbar_title, side="top"), tickvals=tickvals, ticktext=ticktext),
        )
    )
    if mask is not None and mask.any():
        fig.add_trace(
            go.Heatmap(
                z=np.where(mask & ~np.isnan(Z), 1.0, np.nan),
                x=x,
                y=y,
                colorscale=[[0, "#d9d9d9"], [1, "#d9d9d9"]],
                showscale=False,
                hovertemplate=f"{hover_y} = %{{y}}<br>{hover_x} = %{{x}}<br>dropped by truncation<extra></extra>",
                name="dropped",
            )
        )
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title)
    fig.update_yaxes(autorange="reversed")
    return style(fig)


HEAT_CENTRES = ("identity", "one")  # white at the lag-0 norm (default), or at a norm of 1 (absolute)


def norm_symbol(norm) -> str:
    return "‖·‖<sub>F</sub>" if norm == "fro" else "‖·‖<sub>2</sub>"


def flow_symbol(block: str = "h", lag: bool = False) -> str:
    """∂h(t)/∂h(s), or ∂c(t)/∂c(s) for the LSTM's cell state; (t−k) in place of (s) by lag."""
    v = "c" if block == "c" else "h"
    return f"∂{v}(t)/∂{v}(t−k)" if lag else f"∂{v}(t)/∂{v}(s)"


def gradient_flow_heatmap(
    L: np.ndarray,
    norm="fro",
    block: str = "h",
    lag: bool = False,
    mask: np.ndarray | None = None,
    centre: str = "identity",
    max_cells: int = 300,
    zrange: tuple[float, float] | None = None,
) -> go.Figure:
    """The gradient-flow matrix L[t, s] = log10 ||dh_t/dh_s|| (or its (t, k) lag view M[t, k]).

    Matrices wider than ``max_cells`` are shown every ``stride``-th step (:func:`display_stride`),
    with the axes in the real step numbers kept. ``centre``: "identity" draws the lag-0 norm (the
    identity's: √H in Frobenius norm) white, so only what the Jacobians do is coloured; "one" draws
    a norm of 1 white (the absolute scale).
    """
    if centre not in HEAT_CENTRES:
        raise ValueError(f"centre must be one of {HEAT_CENTRES}, got {centre!r}")
    T = L.shape[0]
    idx = shown_steps(T, max_cells)  # 0-indexed rows (and columns) shown
    Ls = L[np.ix_(idx, idx)]
    steps = idx + 1  # 1-indexed time, as in the equations
    lag0 = L[:, 0] if lag else np.diagonal(L)
    lag0 = lag0[np.isfinite(lag0)]
    white = float(np.median(lag0)) if centre == "identity" and lag0.size else 0.0
    name = norm_symbol(norm)
    what = flow_symbol(block, lag)
    if lag:  # the same data indexed by k = t - s
        x, title, x_title, hover_x = idx, f"Gradient flow by lag: {name} of {what}", "lag k = t − s (steps back)", "k"
        y_title = "time step t"
    else:
        x, title, x_title, hover_x = steps, f"Gradient flow: {name} of {what}", "source step s", "s"
        y_title = "target step t"
    return log_heatmap(
        Ls,
        x=x,
        y=steps,
        title=title,
        x_title=x_title,
        y_title=y_title,
        colorbar_title=name,
        hover_x=hover_x,
        hover_y="t",
        hover_value="norm",
        mask=None if mask is None else mask[np.ix_(idx, idx)],
        centre=white,
        zrange=zrange,
    )


def shown_steps(T: int, max_cells: int = 300) -> np.ndarray:
    """The 0-indexed steps a strided heatmap shows: every ``stride``-th, and always the last."""
    return np.unique(np.r_[np.arange(0, T, display_stride(T, max_cells)), T - 1])


def stride_note(T: int, max_cells: int = 300) -> str | None:
    """What a page says under a strided heatmap (None when every step is shown)."""
    stride = display_stride(T, max_cells)
    if stride == 1:
        return None
    return (
        f"The heatmap shows every {_ordinal(stride)} step (steps 1, {1 + stride}, {1 + 2 * stride}, …, and T = {T}); "
        "the CSV holds all of them."
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- shared helpers for log-valued line charts ------------------------------------------------------
#
# Norms that span 1e-120 .. 1e+160 cannot go through 10**x (they under/overflow float64 beyond
# 1e+-308), so line charts plot log10 values on a linear axis and label it in decades: the same
# picture as a log axis, exact at any magnitude.


def raw_label(v: float) -> str:
    """The raw value of a log10 number as text: 3.162e-120, exact where 10**v would underflow."""
    if v is None or not np.isfinite(v):
        return "0 (exactly)" if v is not None and np.isneginf(v) else "n/a"
    e = math.floor(v)
    return f"{10 ** (v - e):.3f}e{e:+d}"


def short_label(v: float) -> str:
    """A log10 number's raw value to 3 significant digits for a headline: 7.15, 0.0123, 3.16e-120
    (scientific only outside [1e-3, 1e4], exact where 10**v would underflow)."""
    if v is None or not np.isfinite(v):
        return raw_label(v)
    if -3 <= v < 4 and "e" not in (txt := f"{10**v:.3g}"):  # 9999 rounds to 1e+04: written as below
        return txt
    e = math.floor(v)
    m = float(f"{10 ** (v - e):.3g}")
    if m >= 10:  # 9.996 rounds up: carry into the exponent
        m, e = m / 10, e + 1
    return f"{m:.3g}e{e}"


def _raw_labels(values) -> list[str]:
    return [raw_label(float(v)) for v in np.asarray(values, dtype=float).ravel()]


def decade_axis(fig: go.Figure, values_log10, axis: str = "y", title: str | None = None, **kw) -> go.Figure:
    """Label a linear axis holding log10 values by raw value: decades (1e-6, 1e-3, 1, ...) where the
    range spans them, finer steps where it does not (:func:`log_ticks`)."""
    v = np.asarray(values_log10, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (-1.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    tickvals, ticktext = log_ticks(lo, hi)
    upd = dict(tickvals=tickvals, ticktext=ticktext, zeroline=False, **kw)
    if title is not None:
        upd["title_text"] = title
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(**upd)
    return fig


def _safe_log10(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(a)


# -- gradient flow --------------------------------------------------------------------------------------


def lag_profile_figure(
    profile: np.ndarray,
    *,
    rate: float | None = None,
    gamma_sigma1: float | None = None,
    horizon: int | None = None,
    threshold: float = 1e-3,
    norm="fro",
    compare: dict[str, np.ndarray] | None = None,
    label: str = "this model",
    block: str = "h",
) -> go.Figure:
    """Mean log10 ||dh_t/dh_{t-k}|| (or the LSTM's dc_t/dc_{t-k}: ``block``) against lag k, with the fitted decay rate, the theoretical
    envelope (gamma sigma_1)^k times the lag-0 norm, and the memory horizon marked.

    ``compare``: more profiles (name -> log10 profile) drawn dotted, e.g. an LSTM against an RNN.
    """
    prof = np.asarray(profile, dtype=float)
    k = np.arange(len(prof))
    name = norm_symbol(norm)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=k,
            y=prof,
            mode="lines+markers",
            marker=dict(size=5),
            name=f"measured ({label})",
            customdata=_raw_labels(prof),
            hovertemplate="lag k = %{x}<br>mean norm = %{customdata}<extra></extra>",
        )
    )
    shown = [prof]
    use = (k >= 1) & np.isfinite(prof)
    if rate is not None and np.isfinite(rate) and use.sum() >= 2:
        slope, icpt = np.polyfit(k[use], prof[use], 1)
        fit = icpt + slope * k
        shown.append(fit)
        fig.add_trace(
            go.Scatter(
                x=k,
                y=fit,
                mode="lines",
                line=dict(dash="dash", color="#2ca02c"),
                name=f"fitted: ×{10**rate:.4g} per step (log10 slope {rate:.3g})",
                customdata=_raw_labels(fit),
                hovertemplate="lag k = %{x}<br>fit = %{customdata}<extra></extra>",
            )
        )
    if gamma_sigma1 is not None and gamma_sigma1 > 0 and np.isfinite(prof[0]):
        env = prof[0] + k * math.log10(gamma_sigma1)
        shown.append(env)
        fig.add_trace(
            go.Scatter(
                x=k,
                y=env,
                mode="lines",
                line=dict(dash="dot", color="#d62728", width=2),
                name=f"bound (γσ<sub>1</sub>)<sup>k</sup>, γσ<sub>1</sub> = {gamma_sigma1:.3g}",
                customdata=_raw_labels(env),
                hovertemplate="lag k = %{x}<br>(γσ<sub>1</sub>)<sup>k</sup> bound = %{customdata}<extra></extra>",
            )
        )
    for i, (cname, cprof) in enumerate((compare or {}).items()):
        cprof = np.asarray(cprof, dtype=float)
        shown.append(cprof)
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(cprof)),
                y=cprof,
                mode="lines",
                line=dict(dash="longdash", color=["#9467bd", "#ff7f0e", "#17becf"][i % 3], width=2.5),
                name=f"measured ({cname})",
                customdata=_raw_labels(cprof),
                hovertemplate=f"{cname}<br>lag k = %{{x}}<br>mean norm = %{{customdata}}<extra></extra>",
            )
        )
    all_v = np.concatenate([s[np.isfinite(s)] for s in shown]) if shown else np.zeros(1)
    # Keep the envelope from squashing the data: clip the view to the data range padded by 3 decades.
    data_v = prof[np.isfinite(prof)]
    if data_v.size:
        lo = max(all_v.min(), data_v.min() - 3) if all_v.size else data_v.min()
        hi = min(all_v.max(), data_v.max() + 3) if all_v.size else data_v.max()
        fig.update_yaxes(range=[lo - 0.3, hi + 0.3])
        all_v = np.array([lo, hi])
    if horizon is not None:
        fig.add_vline(x=horizon, line=dict(color="#555", dash="dash"))
        fig.add_annotation(
            x=horizon,
            y=1,
            yref="paper",
            text=f"memory horizon k = {horizon}<br>(norm < {threshold_label(threshold)} × lag 0)",
            showarrow=False,
            xanchor="right" if horizon > 0.6 * (len(prof) - 1) else "left",
            yanchor="top",
            bgcolor="rgba(255,255,255,0.8)",
        )
    fig.update_layout(
        title=f"Gradient norm against lag k: {name} of {flow_symbol(block, lag=True)}",
        xaxis_title="lag k = t − s (steps); norm averaged over t",
        legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0),
    )
    decade_axis(fig, all_v, "y", title=f"{name} (log scale)")
    return style(fig)


def loss_gradient_figure(norms: np.ndarray, loss_on: str = "last") -> go.Figure:
    """||dL/dh_t|| along the sequence (log scale)."""
    g = _safe_log10(norms)
    t = np.arange(1, len(g) + 1)
    fig = go.Figure(
        go.Scatter(
            x=t,
            y=np.where(np.isneginf(g), np.nan, g),
            mode="lines+markers",
            marker=dict(size=5),
            name="‖∂L/∂h<sub>t</sub>‖",
            customdata=[fmt_power(float(v)) for v in np.asarray(norms, dtype=float)],
            hovertemplate="t = %{x}<br>‖∂L/∂h<sub>t</sub>‖ = %{customdata}<extra></extra>",
        )
    )
    where = "T" if loss_on == "last" else "every t"  # short: the plot may be half a column wide
    fig.update_layout(title="‖∂L/∂h(t)‖ by step t", xaxis_title=f"step t (loss at {where})", showlegend=False)
    decade_axis(fig, g, "y", title="‖∂L/∂h(t)‖ (log scale)")
    return style(fig)


def contributions_figure(norms: np.ndarray, t: int) -> go.Figure:
    """Frobenius norm of each per-step term of dl_t/dW_hh (t 0-indexed, shown 1-indexed)."""
    g = _safe_log10(norms)
    steps = np.arange(1, len(g) + 1)
    finite = np.isfinite(g)
    base = (g[finite].min() - 0.5) if finite.any() else -1.0
    fig = go.Figure(
        go.Bar(
            x=steps,
            y=np.where(finite, g - base, 0.0),
            base=base,
            marker_color="#1f77b4",
            customdata=[fmt_power(float(v)) for v in np.asarray(norms, dtype=float)],
            hovertemplate="step i = %{x}<br>‖term i‖<sub>F</sub> = %{customdata}<extra></extra>",
            name="term norm",
        )
    )
    fig.update_layout(
        title=f"Terms of ∂ℓ({t + 1})/∂W<sub>hh</sub>",
        xaxis_title="step i of the term",
        showlegend=False,
    )
    decade_axis(fig, g, "y", title="‖term‖<sub>F</sub> (log scale)")
    return style(fig)


def display_stride(T: int, max_cells: int = 300) -> int:
    """Heatmaps wider than ``max_cells`` are shown every ``stride``-th step (the CSV has them all)."""
    return max(1, math.ceil(T / max_cells))


# -- spectrum ---------------------------------------------------------------------------------------------


def eigenvalue_figure(
    eigenvalues: np.ndarray, rho: float, matrix: str = "W_hh", circle_law: float | None = None
) -> go.Figure:
    """Eigenvalues in the complex plane with the unit circle (and the circle of radius rho); ``circle_law``:
    the radius g of the disk a Gaussian init's eigenvalues fill as H grows (drawn when given)."""
    ev = np.asarray(eigenvalues)
    th = np.linspace(0, 2 * np.pi, 361)
    fig = go.Figure()
    if circle_law is not None:
        fig.add_trace(
            go.Scatter(
                x=circle_law * np.cos(th), y=circle_law * np.sin(th), mode="lines",
                line=dict(color="#2ca02c", dash="dash", width=2), name=f"circular law: radius g = {circle_law:.3g}",
                hoverinfo="skip",
            )
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=np.cos(th), y=np.sin(th), mode="lines", line=dict(color="#333", width=1.5), name="unit circle |λ| = 1",
            hoverinfo="skip",
        )
    )  # fmt: skip
    if rho > 0 and abs(rho - 1) > 1e-6:
        fig.add_trace(
            go.Scatter(
                x=rho * np.cos(th), y=rho * np.sin(th), mode="lines", line=dict(color="#d62728", dash="dot"),
                name=f"spectral radius ρ = {rho:.3g}", hoverinfo="skip",
            )
        )  # fmt: skip
    # All |λ| equal (an orthogonal W_hh): widen the colour range so the bar does not read 1.00, 1.00, 1.00.
    mags = np.abs(ev)
    flat = mags.size == 0 or float(np.ptp(mags)) < 1e-6 * max(1.0, float(mags.max()))
    span = dict(cmin=float(mags.mean()) - 0.05, cmax=float(mags.mean()) + 0.05) if flat and mags.size else {}
    fig.add_trace(
        go.Scatter(
            x=ev.real,
            y=ev.imag,
            mode="markers",
            marker=dict(size=7, color=np.abs(ev), colorscale="Viridis", line=dict(width=0.5, color="white"), **span,
                        colorbar=dict(title=dict(text="|λ|", side="top"), tickformat=".3g")),
            name="eigenvalues λ",
            customdata=np.abs(ev),
            hovertemplate="λ = %{x:.4g} %{y:+.4g}i<br>|λ| = %{customdata:.4g}<extra></extra>",
        )
    )  # fmt: skip
    r = max(1.1, 1.1 * float(np.abs(ev).max()) if ev.size else 1.1, 1.1 * (circle_law or 0))
    fig.update_layout(
        title=f"Eigenvalues of {matrix} in the complex plane",
        xaxis_title="Re λ",
        yaxis_title="Im λ",
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        margin=dict(b=120),
    )
    fig.update_xaxes(range=[-r, r], zeroline=True)
    fig.update_yaxes(range=[-r, r], scaleanchor="x", scaleratio=1, zeroline=True)
    return style(fig)


def singular_values_figure(singular_values: np.ndarray, gamma: float, matrix: str = "W_hh") -> go.Figure:
    """Singular values, largest first, with Pascanu et al.'s 1/gamma line."""
    sv = np.asarray(singular_values, dtype=float)
    i = np.arange(1, len(sv) + 1)
    bound = 1.0 / gamma
    fig = go.Figure(
        go.Scatter(
            x=i, y=sv, mode="lines+markers", marker=dict(size=6), name="σ<sub>i</sub>",
            hovertemplate="i = %{x}<br>σ<sub>i</sub> = %{y:.5g}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_hline(
        y=bound,
        line=dict(color="#d62728", dash="dash", width=2),
        annotation_text=f"1/γ = {bound:.3g}: σ<sub>1</sub> below ⇒ gradients vanish",
        annotation_position="top right",
        # Anchored at the right edge and lifted clear of the line so it never covers the dots.
        annotation=dict(bgcolor="rgba(255,255,255,0.85)", xanchor="right", yanchor="bottom", yshift=14),
    )
    fig.update_layout(
        title=f"Singular values of {matrix} (σ<sub>1</sub> = {sv[0]:.3g})"
        if sv.size
        else f"Singular values of {matrix}",
        xaxis_title="index i (descending)",
        yaxis_title="singular value σ<sub>i</sub> (unitless)",
        showlegend=False,
    )
    top = max(float(sv.max()) if sv.size else 1.0, bound)
    fig.update_yaxes(range=[0, 1.25 * top])  # headroom for the 1/γ label above the line
    return style(fig)


def lyapunov_figure(exponents_log10: np.ndarray, rate: float | None = None) -> go.Figure:
    """Lyapunov exponents (log10 per step), with zero (neutral) and the measured decay rate marked."""
    lam = np.asarray(exponents_log10, dtype=float)
    i = np.arange(1, len(lam) + 1)
    shown = np.where(np.isfinite(lam), lam, np.nan)
    fig = go.Figure(
        go.Bar(
            x=i,
            y=shown,
            marker_color=np.where(shown > 0, "#d62728", "#1f77b4"),
            customdata=[f"{v:.4g} (×{raw_label(v)} per step)" if np.isfinite(v) else "−∞ (collapsed)" for v in lam],
            hovertemplate="i = %{x}<br>λ<sub>i</sub> = %{customdata}<extra></extra>",
            name="Lyapunov exponents λ<sub>i</sub>",
        )
    )
    fig.add_hline(y=0, line=dict(color="#333", width=1))
    if rate is not None and np.isfinite(rate):
        # A line trace rather than an annotated hline: its label goes in the legend, off the bars.
        fig.add_trace(
            go.Scatter(
                x=[0.5, len(lam) + 0.5], y=[rate, rate], mode="lines", line=dict(color="#2ca02c", dash="dash", width=2),
                name=f"measured decay rate {rate:.3g} / step", hovertemplate=f"measured decay rate {rate:.3g}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        title="Lyapunov spectrum of the driven network (QR method)",
        xaxis_title="exponent index i",
        yaxis_title="λ<sub>i</sub> (log10 growth per step)",
        showlegend=rate is not None and bool(np.isfinite(rate)),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return style(fig)


# -- the newer cells: LRU sensitivity, depth x time ------------------------------------------------------


def lambda_sensitivity_figure(result) -> go.Figure:
    """Zucchet & Orvieto (2024): E|dh_T/d|λ||² against |λ| (measured, with its exact expectation), beside
    ||dh_T/dh_1|| and E|h_T|², both of which stay at or below about 1. ``result``: a
    :class:`bptt_core.sensitivity.LambdaSensitivity`."""
    r = np.asarray(result.radii, dtype=float)
    gap = 1 - r  # log axis of 1 - |λ|: the approach to the unit circle spreads out
    traces = [
        ("E|∂h_T/∂|λ||², measured", np.log10(result.measured), "#d62728", "solid", "circle"),
        ("its expectation (exact sum)", np.log10(result.theory), "#d62728", "dot", None),
        ("‖∂h_T/∂h_1‖ = |λ|^(T−1)", np.asarray(result.jacobian_log10, dtype=float), "#1f77b4", "solid", "square"),
        ("E|h_T|² (normalised forward)", np.log10(result.state_ms), "#2ca02c", "dash", "diamond"),
    ]
    fig = go.Figure()
    for name, y, color, dash, symbol in traces:
        fig.add_trace(
            go.Scatter(
                x=gap, y=y, name=name, mode="lines+markers" if symbol else "lines",
                line=dict(color=color, dash=dash, width=2), marker=dict(symbol=symbol or "circle", size=8),
                customdata=[[f"{ri:.4g}", label] for ri, label in zip(r, _raw_labels(y), strict=True)],
                hovertemplate=f"|λ| = %{{customdata[0]}}<br>{name} = %{{customdata[1]}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(type="log", autorange="reversed", title="1 − |λ| (log scale; |λ| → 1 to the right)")
    decade_axis(fig, np.concatenate([t[1][np.isfinite(t[1])] for t in traces]), "y", "value (log scale)")
    fig.update_layout(
        title=f"Sensitivity to λ grows as |λ| → 1, the Jacobian does not (LRU, T = {result.seq_len})",
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),
    )
    return style(fig)


def layer_reach_figure(R: np.ndarray, t: int | None = None) -> go.Figure:
    """The depth x time picture of a stack: log10 ||dh^top_t/dh^i_s|| for layer i (rows, the top first)
    and step s (columns), 1-indexed as on the other heatmaps. ``R``: :func:`bptt_core.jacobians.layer_reach`."""
    R = np.asarray(R, dtype=float)
    layers, T = R.shape
    t = T - 1 if t is None else t
    return log_heatmap(
        R[::-1],
        x=np.arange(1, T + 1),
        y=[f"layer {i}" + (" (top)" if i == layers - 1 else "") for i in range(layers - 1, -1, -1)],
        title=f"How much of a change at (layer i, step s) reaches the top layer's h at step {t + 1}",
        x_title="step s",
        y_title="layer i",
        colorbar_title=f"‖∂h<sup>top</sup><sub>{t + 1}</sub>/∂h<sup>i</sup><sub>s</sub>‖",
        hover_x="s",
        hover_y="layer",
        hover_value="norm",
    )


# -- clipping ---------------------------------------------------------------------------------------------

TWIN_COLORS = {"unclipped": "#d62728", "norm": "#1f77b4", "value": "#2ca02c"}
TWIN_LABELS = {"unclipped": "no clipping", "norm": "clip by norm", "value": "clip by value"}
# Twins are identical until clipping first acts: thinner, dashed lines over thicker ones keep all three
# visible where they coincide.
TWIN_LINES = {
    "unclipped": dict(width=5, dash="solid"),
    "norm": dict(width=3, dash="dash"),
    "value": dict(width=2, dash="dot"),
}
CLIP_MARKERS = {"norm": "triangle-down", "value": "diamond"}  # white-filled, black-edged: never the curve's colour


def _twin_line(name: str) -> dict:
    return dict(color=TWIN_COLORS.get(name), **TWIN_LINES.get(name, dict(width=2, dash="solid")))


def grad_norm_history_figure(histories: dict, threshold: float, diverged: dict | None = None) -> go.Figure:
    """Global gradient norm (before clipping) per training step for each twin, log scale, with the
    clipping threshold line, clip events marked in a contrasting style, the first clip drawn as a
    line, and divergence shown as such."""
    fig = go.Figure()
    allv = [math.log10(threshold)]
    first_clips = {}
    for name, h in histories.items():
        g = _safe_log10(h["grad_norm"].to_numpy())
        finite = np.isfinite(g)
        allv.extend(g[finite].tolist())
        fig.add_trace(
            go.Scatter(
                x=h["step"], y=np.where(finite, g, np.nan), mode="lines", line=_twin_line(name),
                name=TWIN_LABELS.get(name, name), customdata=[fmt_power(float(v)) for v in h["grad_norm"]],
                hovertemplate=f"{TWIN_LABELS.get(name, name)}<br>step %{{x}}<br>‖g‖ before clip = %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
        clipped = h[h["clipped"].astype(bool)]
        if len(clipped):
            first_clips[name] = int(clipped["step"].iloc[0])
            fig.add_trace(
                go.Scatter(
                    x=clipped["step"], y=_safe_log10(clipped["grad_norm"].to_numpy()), mode="markers",
                    marker=dict(symbol=CLIP_MARKERS.get(name, "circle"), size=10, color="white",
                                line=dict(color="#111", width=1.5)),
                    name=f"{TWIN_LABELS.get(name, name)}: clip fired ({len(clipped)} steps)",
                    hovertemplate=f"{TWIN_LABELS.get(name, name)}: clipped at step %{{x}}<extra></extra>",
                )
            )  # fmt: skip
    last = max((int(h["step"].max()) for h in histories.values() if len(h)), default=1)
    if first_clips:
        step = min(first_clips.values())
        who = " and ".join(TWIN_LABELS.get(n, n) for n, s_ in first_clips.items() if s_ == step)
        fig.add_vline(x=step, line=dict(color="#111", dash="dashdot", width=1.5))
        fig.add_annotation(
            x=step, y=0.02, yref="paper", text=f"first clip: step {step} ({who}); identical before it",
            showarrow=False, xanchor="left" if step < last / 2 else "right", yanchor="bottom",
            bgcolor="rgba(255,255,255,0.85)",
        )  # fmt: skip
    for name, step in (diverged or {}).items():
        if step is None:
            continue
        fig.add_vline(x=step, line=dict(color=TWIN_COLORS.get(name, "#000"), dash="dot", width=2))
        fig.add_annotation(
            x=step, y=0.98, yref="paper", text=f"{TWIN_LABELS.get(name, name)}: diverged (NaN/inf) at step {step}",
            showarrow=False, xanchor="left" if step < last / 2 else "right",  # inside the plot, never cut at an edge
            font=dict(color=TWIN_COLORS.get(name, "#000")), bgcolor="rgba(255,255,255,0.85)",
        )  # fmt: skip
    fig.add_hline(
        y=math.log10(threshold),
        line=dict(color="#444", dash="dash", width=2),
        annotation_text=f"threshold c = {threshold:g}",
        annotation_position="top right",
        annotation_bgcolor="rgba(255,255,255,0.85)",
    )
    fig.update_xaxes(range=[0, last])  # annotations must not widen the axis
    fig.update_layout(
        title="Gradient norm during training, before clipping (twin runs)",
        xaxis_title="training step",
        legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0),
    )
    decade_axis(fig, allv, "y", title="global ‖∂L/∂θ‖<sub>2</sub> (log scale)")
    return style(fig)


def loss_history_figure(histories: dict, diverged: dict | None = None) -> go.Figure:
    """Training loss of each twin (log scale)."""
    fig = go.Figure()
    allv = []
    for name, h in histories.items():
        lv = _safe_log10(h["loss"].to_numpy())
        finite = np.isfinite(lv)
        allv.extend(lv[finite].tolist())
        fig.add_trace(
            go.Scatter(
                x=h["step"], y=np.where(finite, lv, np.nan), mode="lines", line=_twin_line(name),
                name=TWIN_LABELS.get(name, name), customdata=[fmt_power(float(v)) for v in h["loss"]],
                hovertemplate=f"{TWIN_LABELS.get(name, name)}<br>step %{{x}}<br>loss = %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
    for name, step in (diverged or {}).items():
        if step is not None:
            fig.add_vline(x=step, line=dict(color=TWIN_COLORS.get(name, "#000"), dash="dot", width=2))
    fig.update_layout(
        title="Training loss (twin runs)",
        xaxis_title="training step",
        legend=dict(orientation="h", yanchor="bottom", y=-0.4, x=0),
    )
    decade_axis(fig, allv or [0.0], "y", title="loss L (log scale)")
    return style(fig)


def dh_heatmap_figure(dh_norms: np.ndarray, name: str = "") -> go.Figure:
    """Training step x time heatmap of log10 ||dL/dh_t||."""
    Z = _safe_log10(dh_norms)  # (steps, T)
    fig = log_heatmap(
        Z,
        x=np.arange(1, Z.shape[1] + 1),
        y=np.arange(Z.shape[0]),
        title=f"‖∂L/∂h(t)‖ during training{': ' + name if name else ''}",
        x_title="time step t",
        y_title="training step",
        colorbar_title="‖∂L/∂h(t)‖",
        hover_x="t",
        hover_y="step",
        hover_value="‖∂L/∂h(t)‖",
    )
    return fig


# -- truncated BPTT -----------------------------------------------------------------------------------------


def comparison_figure(df) -> go.Figure:
    """Full BPTT, TBPTT variants and RTRL side by side: memory, time per update, gradient accuracy."""
    from plotly.subplots import make_subplots

    d = df[df["memory_bytes"].notna()] if "memory_bytes" in df else df
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("memory held (KiB)", "time per update (ms)", "cosine to full BPTT"),
        horizontal_spacing=0.09,
    )
    names = d["variant"].astype(str).tolist()
    colors = ["#d62728" if n == "full BPTT" else "#9467bd" if n == "RTRL" else "#1f77b4" for n in names]
    mem = d["memory_bytes"].astype(float).to_numpy() / 1024
    tm = d["time_per_update_s"].astype(float).to_numpy() * 1e3
    cos = d["cosine"].astype(float).to_numpy()
    fig.add_trace(
        go.Bar(x=names, y=mem, marker_color=colors, hovertemplate="%{x}<br>%{y:.4g} KiB<extra></extra>"), 1, 1
    )
    spread = [
        f"{lo * 1e3:.2g}–{hi * 1e3:.2g}"
        for lo, hi in zip(
            d.get("time_per_update_min_s", d["time_per_update_s"]).astype(float),
            d.get("time_per_update_max_s", d["time_per_update_s"]).astype(float),
            strict=True,
        )
    ]
    fig.add_trace(
        go.Bar(x=names, y=tm, marker_color=colors, customdata=spread,
               hovertemplate="%{x}<br>≈ %{y:.2g} ms per update (median; runs %{customdata} ms)<extra></extra>"), 1, 2
    )  # fmt: skip
    fig.add_trace(
        go.Bar(x=names, y=cos, marker_color=colors, hovertemplate="%{x}<br>cosine %{y:.6f}<extra></extra>"), 1, 3
    )
    # RTRL holds orders of magnitude more than the BPTT variants: linear bars would flatten them to nothing.
    for col, v, unit in ((1, mem, "KiB"), (2, tm, "ms")):
        pos = v[np.isfinite(v) & (v > 0)]
        lo, hi = (math.floor(math.log10(pos.min())), math.ceil(math.log10(pos.max()))) if pos.size else (-1, 1)
        hi = max(hi, lo + 1)
        tv, tt = decade_ticks(lo, hi)
        fig.update_yaxes(
            title_text=f"{unit} (log scale)", type="log", tickvals=[10.0**e for e in tv], ticktext=tt,
            range=[lo, math.log10(pos.max()) + 0.15 if pos.size else hi],  # no empty decade above the tallest bar
            row=1, col=col,
        )  # fmt: skip
    lo = float(np.nanmin(cos)) if np.isfinite(cos).any() else 0.0
    fig.update_yaxes(title_text="cosine (1 = exact)", range=[min(0.0, lo - 0.05), 1.05], row=1, col=3)
    fig.update_xaxes(title_text="method", tickangle=-30)
    fig.update_layout(title="Measured: full BPTT vs TBPTT vs RTRL on this model", showlegend=False)
    return style(fig)


# -- overview ------------------------------------------------------------------------------------------------


# The unrolled network (the Overview's diagram) is static SVG: bptt_core.diagram.


# -- phase diagram (sweeps) ---------------------------------------------------------------------------

MEASURE_LABELS = {
    "lyapunov": "top Lyapunov exponent λ₁ (log10 per step)",
    "decay_rate": "decay rate of ‖∂h_t/∂h_{t−k}‖ (log10 per step)",
    "memory_horizon": "memory horizon (steps to 1e-3)",
    "sigma1_gamma": "γσ₁",
    "trainability": "final training loss",
}
AXIS_LABELS = {
    "gain": "gain g",
    "spectral_radius": "spectral radius ρ",
    "input_scale": "input scale",
    "bias_scale": "bias scale σ_b",
    "hidden_size": "hidden units H",
    "seq_len": "sequence length T",
}
CENTRED_MEASURES = ("lyapunov", "decay_rate")  # diverging colours around 0 (order blue, chaos red)


def phase_diagram(
    summary,
    x: str,
    y: str | None,
    measure: str,
    stat: str = "mean",
    lyapunov=None,
    theory=None,
    theory_axes: tuple | None = None,
    edge: float | None = None,
    seeds: int = 1,
) -> go.Figure:
    """The grid coloured by ``measure`` (its seed ``stat``: "mean" or "std"), with the measured
    order/chaos boundary (the λ₁ = 0 contour of ``lyapunov``, a seed-mean summary) and the
    mean-field line ``theory`` (a frame with columns ``theory_axes`` = (gain axis, other axis)).

    ``summary``: a frame with the axis columns and ``mean``, ``std`` (bptt_core.sweep.summarise).
    ``edge``: the edge finder's gain, marked when the gain is an axis.
    """
    label = MEASURE_LABELS.get(measure, measure)
    what = label if stat == "mean" else f"spread (std over seeds) of {label}"
    fig = go.Figure()
    if y is None:
        s = summary.sort_values(x)
        xs, m, sd = s[x].to_numpy(), s["mean"].to_numpy(), s["std"].to_numpy()
        if seeds > 1:
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([m + sd, (m - sd)[::-1]]), fill="toself", mode="lines",
                    fillcolor="rgba(31,119,180,0.18)", line=dict(width=0), name="± 1 std over seeds", hoverinfo="skip",
                )
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=xs, y=m, mode="lines+markers", name=f"mean over {seeds} seed(s)",
                       customdata=sd, hovertemplate=f"{x} = %{{x:.4g}}<br>mean %{{y:.4g}} ± %{{customdata:.3g}}<extra></extra>")
        )  # fmt: skip
        if measure == "lyapunov":
            fig.add_hline(y=0, line=dict(color="#333", dash="dash"), annotation_text="λ₁ = 0: order | chaos")
        if theory is not None and theory_axes and theory_axes[0] == x:
            g = float(theory[x].iloc[0])
            if math.isfinite(g):
                fig.add_vline(
                    x=g, line=dict(color="#2ca02c", width=2), annotation_text=f"mean field χ₁ = 1: {x} = {g:.3g}"
                )
        if edge is not None and x == "gain":
            fig.add_vline(x=edge, line=dict(color="#9467bd", dash="dot"), annotation_text=f"edge finder: {edge:.4g}",
                          annotation_position="bottom right")  # fmt: skip
        fig.update_layout(title=f"{what} against {AXIS_LABELS.get(x, x)}", xaxis_title=AXIS_LABELS.get(x, x),
                          yaxis_title=label)  # fmt: skip
        return style(fig)
    grid = summary.pivot(index=y, columns=x, values=stat)  # (ny, nx)
    z = grid.to_numpy()
    finite = z[np.isfinite(z)]
    kw = {}
    if measure in CENTRED_MEASURES and stat == "mean" and finite.size:
        r = float(np.abs(finite).max()) or 1.0
        kw = dict(colorscale="RdBu_r", zmin=-r, zmax=r, zmid=0)
    else:
        kw = dict(colorscale="Viridis")
    fig.add_trace(
        go.Heatmap(
            x=grid.columns.to_numpy(), y=grid.index.to_numpy(), z=z, name=measure, **kw,
            colorbar=dict(title=dict(text=measure if stat == "mean" else f"std {measure}", side="top")),
            hoverinfo="skip",  # the grid points' markers above carry the hover (and take the click)
        )
    )  # fmt: skip
    # Transparent markers on the grid points: what a click selects (a heatmap cell is not a point).
    gx, gy = np.meshgrid(grid.columns.to_numpy(), grid.index.to_numpy())
    fig.add_trace(
        go.Scatter(
            x=gx.ravel(), y=gy.ravel(), mode="markers", marker=dict(size=14, color="rgba(0,0,0,0.01)"),
            customdata=z.ravel(), name="grid points (click to open)", showlegend=False,
            hovertemplate=f"{x} = %{{x:.4g}}<br>{y} = %{{y:.4g}}<br>{stat} {measure} = %{{customdata:.4g}}"
            "<br>click: open this network<extra></extra>",
        )
    )  # fmt: skip
    if lyapunov is not None:
        lg = lyapunov.pivot(index=y, columns=x, values="mean")
        fig.add_trace(
            go.Contour(
                x=lg.columns.to_numpy(), y=lg.index.to_numpy(), z=lg.to_numpy(), name="measured boundary λ₁ = 0",
                contours=dict(start=0, end=0, size=1, coloring="none"), line=dict(color="black", width=3),
                showscale=False, showlegend=True, hoverinfo="skip",
            )
        )  # fmt: skip
    if theory is not None and theory_axes:
        gain_axis, other = theory_axes
        tx, ty = (theory[gain_axis], theory[other]) if gain_axis == x else (theory[other], theory[gain_axis])
        fig.add_trace(
            go.Scatter(x=tx, y=ty, mode="lines", line=dict(color="#2ca02c", width=3, dash="dash"),
                       name="mean-field boundary χ₁ = 1", hoverinfo="skip")
        )  # fmt: skip
    if edge is not None and "gain" in (x, y):
        add = fig.add_vline if x == "gain" else fig.add_hline
        add(edge, line=dict(color="#9467bd", dash="dot"), annotation_text=f"edge finder: gain {edge:.4g}")
    fig.update_layout(
        title=f"{what}",
        hovermode="closest",
        clickmode="event+select",
        xaxis_title=AXIS_LABELS.get(x, x),
        yaxis_title=AXIS_LABELS.get(y, y),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        margin=dict(b=120),
    )
    fig.update_xaxes(range=[float(grid.columns.min()), float(grid.columns.max())])
    fig.update_yaxes(range=[float(grid.index.min()), float(grid.index.max())])
    return style(fig)


# -- monitored runs ---------------------------------------------------------------------------------------


def run_flow_history_figure(history: dict) -> go.Figure:
    """Decay rate and top Lyapunov exponent (log10 per step, left axis), rho and sigma_1 of the top
    layer's recurrent matrix (right axis), at the logged steps of a monitored run."""
    step = np.asarray(history["step"])
    fig = go.Figure()
    for key, name, color in (("decay_rate", "decay rate", "#2ca02c"), ("lyapunov_top", "top Lyapunov λ₁", "#9467bd")):
        fig.add_trace(
            go.Scatter(x=step, y=np.asarray(history[key], dtype=float), mode="lines+markers", name=name,
                       line=dict(color=color), hovertemplate=f"step %{{x}}<br>{name} = %{{y:.4g}} log10/step<extra></extra>")
        )  # fmt: skip
    for key, name, color in (("rho", "ρ", "#1f77b4"), ("sigma1", "σ₁", "#d62728")):
        fig.add_trace(
            go.Scatter(x=step, y=np.asarray(history[key], dtype=float), mode="lines+markers", name=name, yaxis="y2",
                       line=dict(color=color, dash="dot"), hovertemplate=f"step %{{x}}<br>{name} = %{{y:.4g}}<extra></extra>")
        )  # fmt: skip
    fig.add_hline(y=0, line=dict(color="#999", width=1))
    fig.update_layout(
        title="Gradient flow and spectrum at the logged steps",
        xaxis_title="training step",
        yaxis=dict(title="log10 change per step"),
        yaxis2=dict(title="ρ, σ₁ (top layer)", overlaying="y", side="right", showgrid=False),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return style(fig)


# -- training player (Plotly animation frames: playing needs no server round trip) ----------------------

FRAME_MS = 600  # how long the play button shows each frame
PLAYER_MAX_CELLS = 100  # the player's heatmaps keep at most this many steps per side (every frame is sent at once)


def _frame_title(base: str, f) -> str:
    loss = f"{f.loss:.4g}" if math.isfinite(f.loss) else f"{f.loss} (diverged)"
    why = {"clip": ", clipped", "diverged": ", diverged"}
    extra = "".join(why[r] for r in f.reasons if r in why)
    return f"{base}<br><sup>training step {f.step}, loss {loss}{extra}</sup>"


def animate(fig: go.Figure, frames: list[go.Frame], steps: list[int]) -> go.Figure:
    """Add a play/pause button and a step slider that move through ``frames`` in the browser.

    Every frame is part of the figure, so neither playing nor dragging the slider asks the server for
    anything. The slider's labels are the training steps; frame names must be unique.
    """
    if len(frames) != len(steps):
        raise ValueError(f"frames and steps must have the same length, got {len(frames)} and {len(steps)}")
    fig.frames = frames
    still = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    play = dict(frame=dict(duration=FRAME_MS, redraw=True), fromcurrent=True, transition=dict(duration=0))
    fig.update_layout(
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                showactive=False,
                x=0.0,
                xanchor="left",
                y=-0.22,
                yanchor="top",
                pad=dict(t=0, r=10),
                buttons=[
                    dict(label="▶ Play", method="animate", args=[None, play]),
                    dict(
                        label="‖ Pause",
                        method="animate",
                        args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))],
                    ),
                ],
            )
        ],
        sliders=[
            dict(
                active=0,
                x=0.22,  # right of the Play and Pause buttons
                len=0.78,
                y=-0.22,
                yanchor="top",
                pad=dict(t=0),
                # at the slider's right end: at its left the label ran into the Pause button
                currentvalue=dict(prefix="training step ", visible=True, xanchor="right"),
                steps=[
                    dict(label=str(st), method="animate", args=[[fr.name], still])
                    for fr, st in zip(frames, steps, strict=True)
                ],
            )
        ],
        margin=dict(b=150),
    )
    return fig


def show_frame(fig: go.Figure, index: int) -> go.Figure:
    """Open an animated figure (:func:`animate`) at frame ``index`` (0-based) instead of the first: that
    frame's data in the traces it animates, its title, and the slider's active step (what a copied link's
    chosen frame and the HTML report show). Play then runs from the start in the browser, as before."""
    from .config import check_int

    if not fig.frames or not fig.layout.sliders:
        raise ValueError("fig must be an animated figure (bptt_core.figures.animate): it has no frames")
    index = check_int("index (frame)", index, 0, len(fig.frames) - 1)
    fr = fig.frames[index]
    for i, trace in zip(fr.traces, fr.data, strict=True):
        fig.data[i].update({k: v for k, v in trace.to_plotly_json().items() if k != "type"})
    if fr.layout.title.text is not None:
        fig.update_layout(title_text=fr.layout.title.text)
    fig.layout.sliders[0].active = index
    return fig


def _check_frames(frames) -> list:
    frames = list(frames)
    if not frames:
        raise ValueError("frames must hold at least one snapshot (the run kept none: snapshots=0?)")
    return frames


def _shown_log(Z: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where(np.isneginf(Z), lo, np.where(np.isposinf(Z), hi, Z))


def player_heatmap_figure(frames, norm="fro", block: str = "h", max_cells: int = PLAYER_MAX_CELLS) -> go.Figure:
    """The gradient-flow heatmap of every snapshot, one animation frame each, on one colour scale."""
    frames = _check_frames(frames)
    idx = shown_steps(frames[0].L.shape[0], max_cells)  # the steps every frame shows (and the last)
    Ls = [np.asarray(f.L, dtype=float)[np.ix_(idx, idx)] for f in frames]
    lo, hi = _finite_range(Ls)
    fig = gradient_flow_heatmap(frames[0].L, norm, block, zrange=(lo, hi), max_cells=max_cells, centre="one")
    base = fig.layout.title.text.replace("Gradient flow", "Gradient flow over training")
    out = [
        go.Frame(
            name=f.label,
            data=[go.Heatmap(z=_shown_log(Z, lo, hi), customdata=_log_hover_text(Z))],
            traces=[0],
            layout=dict(title_text=_frame_title(base, f)),
        )
        for f, Z in zip(frames, Ls, strict=True)
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    # taller than a still heatmap: the Play button and the slider take 150 px below it
    return animate(fig, out, [f.step for f in frames]).update_layout(height=580)


def _finite_range(arrays, pad: float = 0.0) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(a, dtype=float)[np.isfinite(a)].ravel() for a in arrays])
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 0.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return lo - pad, hi + pad


def player_dh_figure(frames) -> go.Figure:
    """||dL/dh_t|| along the probe sequence for every snapshot (log scale, one y range for all frames)."""
    frames = _check_frames(frames)
    logs = [_safe_log10(f.dh_norms) for f in frames]
    fig = loss_gradient_figure(frames[0].dh_norms, "last")
    lo, hi = _finite_range(logs, 0.3)
    decade_axis(fig, [lo, hi], "y", title="‖∂L/∂h(t)‖ (log scale)", range=[lo, hi])
    base = "‖∂L/∂h(t)‖ over training"
    out = [
        go.Frame(
            name=f.label,
            data=[
                go.Scatter(
                    y=np.where(np.isneginf(g), np.nan, g),
                    customdata=[fmt_power(float(v)) for v in np.asarray(f.dh_norms, dtype=float)],
                )
            ],
            traces=[0],
            layout=dict(title_text=_frame_title(base, f)),
        )
        for f, g in zip(frames, logs, strict=True)
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    return animate(fig, out, [f.step for f in frames])


def player_eigenvalue_figure(frames, paths: np.ndarray | None = None, matrix: str | None = None) -> go.Figure:
    """Eigenvalues of the recurrent matrix at every snapshot, each with its path so far traced in the
    complex plane. ``paths``: (n_frames, H) matched eigenvalues (:func:`bptt_core.player.eigen_paths`);
    by default each frame's own order (the dots are right, the paths may jump)."""
    frames = _check_frames(frames)
    matrix = matrix or getattr(frames[0], "matrix", "W_hh")
    P = np.asarray(paths if paths is not None else [f.eigenvalues for f in frames], dtype=complex)  # (F, H)
    if P.shape[0] != len(frames):
        raise ValueError(f"paths must have one row per frame ({len(frames)}), got {P.shape[0]}")
    fin = P[np.isfinite(P)]
    r = max(1.1, 1.1 * float(np.abs(fin).max()) if fin.size else 1.1)
    th = np.linspace(0, 2 * np.pi, 361)

    def path_xy(i: int) -> tuple[list, list]:
        xs, ys = [], []
        for j in range(P.shape[1]):
            xs += [*P[: i + 1, j].real.tolist(), None]
            ys += [*P[: i + 1, j].imag.tolist(), None]
        return xs, ys

    def dots(i: int) -> go.Scatter:
        ev = P[i]
        return go.Scatter(x=ev.real, y=ev.imag, customdata=np.abs(ev))

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.cos(th),
            y=np.sin(th),
            mode="lines",
            line=dict(color="#333", width=1.5),
            name="unit circle |λ| = 1",
            hoverinfo="skip",
        )
    )
    px, py = path_xy(0)
    fig.add_trace(
        go.Scatter(
            x=px,
            y=py,
            mode="lines",
            line=dict(color="rgba(31,119,180,0.45)", width=1.5),
            name="path since the first snapshot",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=P[0].real,
            y=P[0].imag,
            mode="markers",
            marker=dict(size=8, color="#d62728", line=dict(width=0.5, color="white")),
            name="eigenvalues λ at this step",
            customdata=np.abs(P[0]),
            hovertemplate="λ = %{x:.4g} %{y:+.4g}i<br>|λ| = %{customdata:.4g}<extra></extra>",
        )
    )
    base = f"Eigenvalues of {matrix} over training"
    out = []
    for i, f in enumerate(frames):
        px, py = path_xy(i)
        title = _frame_title(f"{base} (ρ = {f.rho:.3g})", f)
        out.append(
            go.Frame(name=f.label, data=[go.Scatter(x=px, y=py), dots(i)], traces=[1, 2], layout=dict(title_text=title))
        )
    fig.update_layout(
        title_text=out[0].layout.title.text,
        xaxis_title="Re λ",
        yaxis_title="Im λ",
        legend=dict(orientation="h", yanchor="top", y=-0.5, x=0),  # below the Play button and the slider
    )
    fig.update_xaxes(range=[-r, r], zeroline=True)
    fig.update_yaxes(range=[-r, r], scaleanchor="x", scaleratio=1, zeroline=True)
    fig = animate(style(fig), out, [f.step for f in frames])
    return fig.update_layout(height=600, margin=dict(b=220))


def player_singular_values_figure(frames, matrix: str | None = None) -> go.Figure:
    """Singular values of the recurrent matrix at every snapshot, with the 1/γ line; one y range."""
    frames = _check_frames(frames)
    matrix = matrix or getattr(frames[0], "matrix", "W_hh")
    fig = singular_values_figure(frames[0].singular_values, frames[0].gamma, matrix)
    top = max(
        [1.0 / frames[0].gamma]
        + [float(np.nanmax(f.singular_values)) for f in frames if np.isfinite(f.singular_values).any()]
    )
    fig.update_yaxes(range=[0, 1.25 * top])
    base = f"Singular values of {matrix} over training"
    out = [
        go.Frame(
            name=f.label,
            data=[go.Scatter(y=np.asarray(f.singular_values, dtype=float))],
            traces=[0],
            layout=dict(title_text=_frame_title(f"{base} (σ<sub>1</sub> = {f.sigma1:.3g})", f)),
        )
        for f in frames
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    return animate(fig, out, [f.step for f in frames])


def player_lyapunov_figure(frames) -> go.Figure:
    """The top Lyapunov exponents (log10 per step) at every snapshot; one y range for all frames."""
    frames = _check_frames(frames)
    fig = lyapunov_figure(frames[0].lyapunov)
    lo, hi = _finite_range([f.lyapunov for f in frames], 0.1)
    fig.update_yaxes(range=[min(lo, 0.0), max(hi, 0.0)])
    base = "Top Lyapunov exponents over training"

    def bars(lam):
        lam = np.asarray(lam, dtype=float)
        shown = np.where(np.isfinite(lam), lam, np.nan)
        return go.Bar(
            y=shown,
            marker_color=np.where(shown > 0, "#d62728", "#1f77b4"),
            customdata=[f"{v:.4g} (×{raw_label(v)} per step)" if np.isfinite(v) else "−∞ (collapsed)" for v in lam],
        )

    out = [
        go.Frame(name=f.label, data=[bars(f.lyapunov)], traces=[0], layout=dict(title_text=_frame_title(base, f)))
        for f in frames
    ]
    fig.update_layout(title_text=out[0].layout.title.text)
    return animate(fig, out, [f.step for f in frames])


# -- clicking a heatmap cell (Click to unroll) -----------------------------------------------------------

MAX_CLICK_TARGETS = 25_000  # invisible markers a clickable heatmap may carry (T = 400 shows 200 x 200 / 2)


def clickable_cells(fig: go.Figure, max_targets: int = MAX_CLICK_TARGETS) -> go.Figure:
    """Let a click on a cell of the figure's first heatmap select that cell in the browser.

    Plotly selects points of scatter-like traces only: a heatmap has none, so a click on one never becomes
    a selection (and Streamlit's ``on_select`` never hears it). This adds one invisible marker at the centre
    of every cell with a value (NaN cells, s > t, get none), carrying the cell's hover text; the heatmap's own
    hover is switched off so the marker's label is the one shown, and the nearest marker to the pointer is
    hovered and clicked wherever it is (``hoverdistance=-1``): a click anywhere in a cell selects it, with
    the cell's x and y (what :func:`bptt_core.unroll.selected_cell` reads). Above ``max_targets`` cells the
    figure is left as it is (the page's typed cell still opens any cell).

    Plotly.js hovers and selects from the trace's data, not from the drawn markers, so only one of them is
    drawn (``maxdisplayed``): one SVG node instead of one per cell, which had made the browser's main thread
    spend ~1.3× as long on each step of the Gradient flow page (README, "Benchmarks")."""
    hm = next((t for t in fig.data if t.type == "heatmap"), None)
    if hm is None:
        raise ValueError("fig must hold a heatmap (bptt_core.figures.gradient_flow_heatmap)")
    z = np.asarray(hm.z, dtype=float)
    rows, cols = np.nonzero(np.isfinite(z))
    if len(rows) > max_targets:
        return fig
    x, y = np.asarray(hm.x), np.asarray(hm.y)
    hover = np.asarray(hm.customdata, dtype=object)
    fig.add_trace(
        go.Scatter(
            x=x[cols],
            y=y[rows],
            mode="markers",
            marker=dict(size=6, opacity=0, color="#000", maxdisplayed=1),
            customdata=hover[rows, cols],
            hovertemplate=hm.hovertemplate,
            showlegend=False,
            name="cells (click to unroll)",
            selected=dict(marker=dict(opacity=0)),
            unselected=dict(marker=dict(opacity=0)),
        )
    )
    hm.hoverinfo = "skip"
    fig.update_layout(hovermode="closest", hoverdistance=-1)
    return fig


# -- click to unroll ----------------------------------------------------------------------------------------


def _unroll_x(u) -> np.ndarray:
    """1-indexed step after each factor: s+1 (nothing multiplied yet), s+2, ..., t+1."""
    return np.arange(u.s + 1, u.t + 2)


def unroll_chain_figure(u) -> go.Figure:
    """The running product ||J_t'...J_{s'+1}|| factor by factor (it ends at the clicked value), the
    product of the factors' norms above it (submultiplicativity), and each factor's norm below."""
    from plotly.subplots import make_subplots

    name = "‖·‖<sub>F</sub>" if u.norm == "fro" else "‖·‖<sub>2</sub>"
    t1, s1 = u.t + 1, u.s + 1
    x = _unroll_x(u)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.08)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=u.running_log10,
            mode="lines+markers",
            name=f"running product {name}",
            customdata=_raw_labels(u.running_log10),
            line=dict(color="#1f77b4", width=2.5),
            hovertemplate="after J<sub>%{x}</sub><br>‖product‖ = %{customdata}<extra></extra>",
        ),
        1,
        1,
    )
    if len(u.bound_log10):
        fig.add_trace(
            go.Scatter(
                x=x[1:],
                y=u.bound_log10,
                mode="lines",
                line=dict(color="#d62728", dash="dash"),
                name="product of the factors' norms (upper bound)",
                customdata=_raw_labels(u.bound_log10),
                hovertemplate="bound after J<sub>%{x}</sub> = %{customdata}<extra></extra>",
            ),
            1,
            1,
        )
        f = u.factor_log10_norms
        fig.add_trace(
            go.Bar(
                x=x[1:],
                y=np.where(np.isfinite(f), f, np.nan),
                name=f"{name} of each factor J<sub>i</sub>",
                marker_color=np.where(f > 0, "#d62728", "#1f77b4"),
                customdata=_raw_labels(f),
                hovertemplate="‖J<sub>%{x}</sub>‖ = %{customdata}<extra></extra>",
            ),
            2,
            1,
        )
    fig.add_hline(y=0, line=dict(color="#555", width=1), row=2, col=1)
    fig.update_layout(
        title=f"∂h({t1})/∂h({s1}) unrolled: {name} = {raw_label(u.value)} after {u.t - u.s} factors",
        legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    )
    fig.update_xaxes(title_text="step i of the last factor J<sub>i</sub> multiplied in", row=2, col=1)
    decade_axis(fig, np.concatenate([u.running_log10, u.bound_log10]), "y", title=f"{name} (log scale)")
    fig.update_yaxes(title_text="‖J<sub>i</sub>‖ (log10)", row=2, col=1)
    return style(fig)


def unroll_singular_values_figure(u) -> go.Figure:
    """All singular values of every factor J_i (log scale), with σ = 1 marked: above it a factor
    stretches some direction, below it shrinks every direction."""
    S = u.factor_singular_values
    x = _unroll_x(u)[1:]
    xs = np.repeat(x, S.shape[1]) if S.size else np.zeros(0)
    ys = _safe_log10(S.ravel())
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=np.where(np.isfinite(ys), ys, np.nan),
            mode="markers",
            marker=dict(size=6, color="#1f77b4", opacity=0.7),
            customdata=_raw_labels(ys),
            hovertemplate="J<sub>%{x}</sub><br>σ = %{customdata}<extra></extra>",
            name="σ of J<sub>i</sub>",
        )
    )
    fig.add_hline(y=0, line=dict(color="#d62728", dash="dash"), annotation_text="σ = 1")
    state = "the full (h, c) state" if u.kind == "lstm" else "the state"
    fig.update_layout(
        title=f"Singular values of each factor J<sub>i</sub> (of {state})", xaxis_title="step i", showlegend=False
    )
    decade_axis(fig, np.append(ys, 0.0), "y", title="σ (log scale)")
    return style(fig)


def unroll_saturation_figure(u, threshold: float) -> go.Figure:
    """How many units are saturated or off (slope below ``threshold`` of its maximum) at each step,
    one line per slope (φ′ for a vanilla cell, each gate for a gated one)."""
    x = _unroll_x(u)[1:]
    fig = go.Figure()
    for k, n in u.saturated_counts.items():
        fig.add_trace(
            go.Scatter(
                x=x,
                y=n,
                mode="lines+markers",
                name=f"{k} ({u.functions[k]}′)",
                hovertemplate=f"{k}<br>step %{{x}}<br>%{{y}} units saturated<extra></extra>",
            )
        )
    H = next(iter(u.derivatives.values())).shape[1] if u.derivatives else 0
    fig.update_layout(
        title=f"Saturated or off units per step (slope < {threshold:g} × its maximum)",
        xaxis_title="step i",
        yaxis_title=f"units (of {H})",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    fig.update_yaxes(range=[-0.3, H + 0.3])
    return style(fig)


def unroll_slopes_heatmap(u, name: str) -> go.Figure:
    """One slope (φ′, or a gate's) of every unit at every factor step, as a fraction of its maximum."""
    if name not in u.derivatives:
        raise ValueError(f"name must be one of {', '.join(u.derivatives)}; got {name!r}")
    from .unroll import MAX_SLOPE  # plain dict; unroll imports torch only when called

    D = u.derivatives[name].T / MAX_SLOPE[u.functions[name]]  # (H, n)
    fig = go.Figure(
        go.Heatmap(
            z=D,
            x=_unroll_x(u)[1:],
            y=np.arange(1, D.shape[0] + 1),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar=dict(title=dict(text="slope / max", side="top")),
            hovertemplate="unit %{y}<br>step %{x}<br>slope / max = %{z:.3g}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{name}: {u.functions[name]}′ of each unit (0 = saturated or off)",
        xaxis_title="step i",
        yaxis_title="unit",
    )
    return style(fig)


def nonnormality_figure(u) -> go.Figure:
    """||W^k||_2 against ρ^k for k up to t − s: a gap means non-normal transient growth that the
    spectral radius alone does not show."""
    k = np.arange(len(u.power_log10))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=k,
            y=u.power_log10,
            mode="lines+markers",
            name="‖W<sup>k</sup>‖<sub>2</sub>",
            customdata=_raw_labels(u.power_log10),
            hovertemplate="k = %{x}<br>‖W<sup>k</sup>‖<sub>2</sub> = %{customdata}<extra></extra>",
        )
    )
    rk = u.rho_log10_powers
    fig.add_trace(
        go.Scatter(
            x=k,
            y=np.where(np.isfinite(rk), rk, np.nan),
            mode="lines",
            line=dict(dash="dash", color="#d62728"),
            name=f"ρ<sup>k</sup>, ρ = {u.rho:.3g}",
            customdata=_raw_labels(rk),
            hovertemplate="k = %{x}<br>ρ<sup>k</sup> = %{customdata}<extra></extra>",
        )
    )
    gap = float(np.nanmax(np.where(np.isfinite(u.transient_gap), u.transient_gap, np.nan))) if len(k) > 1 else 0.0
    fig.update_layout(
        title=f"Non-normality of {u.matrix}: largest ‖W<sup>k</sup>‖/ρ<sup>k</sup> = {raw_label(gap)}, "
        f"departure from normality {u.departure:.3g}",
        xaxis_title="power k",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    decade_axis(fig, np.concatenate([u.power_log10, rk]), "y", title="norm (log scale)")
    return style(fig)


def unroll_contribution_figure(u) -> go.Figure:
    """‖term i‖_F of ∂ℓ_t/∂W_hh for every source step i ≤ t (log scale), the clicked s marked: how much of
    the loss's gradient at t arrives through h_s, against the other steps."""
    n = np.asarray(u.contribution_norms, dtype=float)
    ys = _safe_log10(n)
    steps = np.arange(1, len(n) + 1)
    colors = np.where(steps == u.s + 1, "#d62728", "#1f77b4")
    fig = go.Figure(
        go.Bar(
            x=steps,
            y=np.where(np.isfinite(ys), ys, np.nan),
            marker_color=colors,
            customdata=_raw_labels(ys),
            hovertemplate="through h(%{x})<br>‖term‖<sub>F</sub> = %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Terms of ∂ℓ({u.t + 1})/∂W_hh by source step (red: s = {u.s + 1})",
        xaxis_title="source step i",
        showlegend=False,
    )
    decade_axis(fig, ys, "y", title="‖term‖_F (log scale)")
    return style(fig)


# -- compare mode --------------------------------------------------------------------------------------------

COMPARE_COLORS = {"A": "#1f77b4", "B": "#d62728"}


def compare_heatmaps(L_a, L_b, norm="fro", block: str = "h", labels=("A", "B")) -> tuple[go.Figure, go.Figure]:
    """A's and B's gradient-flow heatmaps on one colour range (equal zmin/zmax covering both)."""
    from .compare import shared_range

    zr = shared_range(L_a, L_b)
    figs = []
    for L, lab in zip((L_a, L_b), labels, strict=True):
        fig = gradient_flow_heatmap(np.asarray(L, dtype=float), norm, block, zrange=zr)
        fig.update_layout(title_text=f"{lab}: {fig.layout.title.text}")
        figs.append(fig)
    return figs[0], figs[1]


def log_ratio_figure(D, labels=("A", "B")) -> go.Figure:
    """log10 of B's norm over A's at every (t, s): red where B carries more gradient, blue less."""
    from .compare import symmetric_range

    D = np.asarray(D, dtype=float)
    lo, hi = symmetric_range(D)
    steps = np.arange(1, D.shape[0] + 1)
    tv, tt = decade_ticks(lo, hi)
    a, b = labels
    fig = go.Figure(
        go.Heatmap(
            z=np.clip(D, lo, hi),
            x=steps,
            y=steps,
            zmin=lo,
            zmax=hi,
            colorscale=HEAT_COLORSCALE,
            zmid=0,
            customdata=_log_hover_text(D),
            hovertemplate=f"t = %{{y}}<br>s = %{{x}}<br>{b} / {a} = %{{customdata}}<extra></extra>",
            colorbar=dict(title=dict(text=f"{b} / {a}", side="top"), tickvals=tv, ticktext=tt),
        )
    )
    fig.update_layout(
        title=f"Gradient flow, {b} against {a}: ratio of ‖∂h(t)/∂h(s)‖ (log scale)",
        xaxis_title="source step s",
        yaxis_title="target step t",
    )
    fig.update_yaxes(autorange="reversed")
    return style(fig)


def compare_eigenvalue_figure(ev_a, ev_b, labels=("A", "B"), matrix: str = "W_hh") -> go.Figure:
    """A's and B's eigenvalues in one complex plane, with the unit circle."""
    th = np.linspace(0, 2 * np.pi, 361)
    fig = go.Figure(
        go.Scatter(
            x=np.cos(th),
            y=np.sin(th),
            mode="lines",
            line=dict(color="#333", width=1.5),
            name="unit circle |λ| = 1",
            hoverinfo="skip",
        )
    )
    r = 1.1
    for ev, lab, sym, col in zip((ev_a, ev_b), labels, ("circle", "x"), COMPARE_COLORS.values(), strict=True):
        ev = np.asarray(ev, dtype=complex)
        rho = float(np.abs(ev).max()) if ev.size else 0.0
        r = max(r, 1.1 * rho)
        fig.add_trace(
            go.Scatter(
                x=ev.real,
                y=ev.imag,
                mode="markers",
                marker=dict(size=8, symbol=sym, color=col),
                name=f"{lab}: λ (ρ = {rho:.3g})",
                customdata=np.abs(ev),
                hovertemplate=f"{lab}<br>λ = %{{x:.4g}} %{{y:+.4g}}i<br>|λ| = %{{customdata:.4g}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Eigenvalues of {matrix}: {labels[0]} and {labels[1]} in one plane",
        xaxis_title="Re λ",
        yaxis_title="Im λ",
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
    )
    fig.update_xaxes(range=[-r, r], zeroline=True)
    fig.update_yaxes(range=[-r, r], scaleanchor="x", scaleratio=1, zeroline=True)
    return style(fig)


def compare_history_figure(hist_a, hist_b, column: str = "grad_norm", labels=("A", "B")) -> go.Figure:
    """A's and B's training histories of ``column`` (log scale) on one axis."""
    fig = go.Figure()
    allv = []
    for h, lab in zip((hist_a, hist_b), labels, strict=True):
        v = _safe_log10(h[column].to_numpy(float))
        allv.extend(v[np.isfinite(v)].tolist())
        fig.add_trace(
            go.Scatter(
                x=h["step"],
                y=np.where(np.isfinite(v), v, np.nan),
                mode="lines",
                name=lab,
                line=dict(color=COMPARE_COLORS.get(lab), width=2),
                customdata=[fmt_power(float(x)) for x in h[column]],
                hovertemplate=f"{lab}<br>step %{{x}}<br>{column} = %{{customdata}}<extra></extra>",
            )
        )
    what = {"grad_norm": "global gradient norm (before clipping)", "loss": "training loss"}.get(column, column)
    fig.update_layout(
        title=f"{what.capitalize()}: {labels[0]} and {labels[1]}",
        xaxis_title="training step",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    decade_axis(fig, allv or [0.0], "y", title=f"{what} (log scale)")
    return style(fig)


def compare_singular_values_figure(sv_a, sv_b, gammas=(1.0, 1.0), labels=("A", "B"), matrix: str = "W_hh") -> go.Figure:
    """A's and B's singular values (largest first) on one axis, with Pascanu et al.'s 1/γ line of each
    (one line when both γ agree); the y range covers both series and both lines."""
    from .compare import axis_range

    fig = go.Figure()
    all_v = []
    for sv, lab, sym in zip((sv_a, sv_b), labels, ("circle", "x"), strict=True):
        sv = np.asarray(sv, dtype=float)
        all_v.append(sv)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(sv) + 1), y=sv, mode="lines+markers", name=f"{lab}: σ<sub>i</sub>",
                marker=dict(size=7, symbol=sym), line=dict(color=COMPARE_COLORS.get(lab)),
                hovertemplate=f"{lab}<br>i = %{{x}}<br>σ<sub>i</sub> = %{{y:.5g}}<extra></extra>",
            )
        )  # fmt: skip
    bounds = sorted({1.0 / float(g) for g in gammas})
    for b in bounds:
        who = " and ".join(lab for lab, g in zip(labels, gammas, strict=True) if 1.0 / float(g) == b)
        fig.add_hline(y=b, line=dict(color="#555", dash="dash", width=2), annotation_text=f"1/γ = {b:.3g} ({who})",
                      annotation_position="top right",
                      annotation=dict(bgcolor="rgba(255,255,255,0.85)", xanchor="right", yanchor="bottom", yshift=14))  # fmt: skip
    _, hi = axis_range(0.0, *all_v, *bounds, pad=0.0)
    fig.update_layout(
        title=f"Singular values of {matrix}: {labels[0]} and {labels[1]} on one axis",
        xaxis_title="index i (descending)",
        yaxis_title="singular value σ<sub>i</sub> (unitless)",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    fig.update_yaxes(range=[0, 1.25 * hi])  # headroom for the 1/γ labels
    return style(fig)


def compare_lyapunov_figure(lam_a, lam_b, labels=("A", "B")) -> go.Figure:
    """A's and B's Lyapunov spectra (log10 per step) on one axis, grouped bars, zero marked; a collapsed
    direction (−∞) is left out of the bars and said in the hover."""
    from .compare import axis_range

    fig = go.Figure()
    shown_all = []
    for lam, lab in zip((lam_a, lam_b), labels, strict=True):
        lam = np.asarray(lam, dtype=float)
        shown = np.where(np.isfinite(lam), lam, np.nan)
        shown_all.append(shown)
        fig.add_trace(
            go.Bar(
                x=np.arange(1, len(lam) + 1), y=shown, name=f"{lab}: λ<sub>i</sub>",
                marker_color=COMPARE_COLORS.get(lab),
                customdata=[f"{v:.4g} (×{raw_label(v)} per step)" if np.isfinite(v) else "−∞ (collapsed)" for v in lam],
                hovertemplate=f"{lab}<br>i = %{{x}}<br>λ<sub>i</sub> = %{{customdata}}<extra></extra>",
            )
        )  # fmt: skip
    fig.add_hline(y=0, line=dict(color="#333", width=1))
    lo, hi = axis_range(0.0, *shown_all)
    fig.update_layout(
        title=f"Lyapunov spectra: {labels[0]} and {labels[1]} on one axis",
        barmode="group",
        xaxis_title="exponent index i",
        yaxis_title="λ<sub>i</sub> (log10 growth per step)",
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    fig.update_yaxes(range=[lo, hi])
    return style(fig)
