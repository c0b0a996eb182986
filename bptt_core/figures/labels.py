"""Labels and ticks for numbers kept as log10: decade ticks (1e-6, 1e-3, 1, ...), raw values in the
hover, the norm's symbol. Norms that span 1e-120 .. 1e+160 cannot go through 10**x (they under/overflow
float64 beyond 1e+-308), so line charts plot log10 values on a linear axis and label it in decades: the
same picture as a log axis, exact at any magnitude. Numbers are written by :mod:`bptt_core.units`."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from bptt_core.config import Block, Norm


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


def log_hover_text(L: np.ndarray) -> np.ndarray:
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


def norm_symbol(norm) -> str:
    """‖·‖_F or ‖·‖_2, for a norm in any spelling."""
    return "‖·‖<sub>F</sub>" if Norm.of(norm) is Norm.FRO else "‖·‖<sub>2</sub>"


def flow_symbol(block="h", lag: bool = False) -> str:
    """∂h(t)/∂h(s), or ∂c(t)/∂c(s) for the LSTM's cell state; (t−k) in place of (s) by lag."""
    v = Block.of(block).value
    return f"∂{v}(t)/∂{v}(t−k)" if lag else f"∂{v}(t)/∂{v}(s)"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


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


def raw_labels(values) -> list[str]:
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


def safe_log10(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(a)
