"""One formatter for each unit the project writes: bytes, seconds, and numbers kept as log10.

Every page, figure, table, report and command-line message formats through these, so the same
quantity reads the same everywhere.
"""

from __future__ import annotations

import math


def format_bytes(n: float) -> str:
    """Binary units, 3 significant digits: 512 B, 1.5 KiB, 64.0 MiB, 2.00 GiB, 1.23 TiB."""
    n = float(n)
    if not math.isfinite(n):
        return str(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_seconds(s: float) -> str:
    """850 ms, 12.3 s, 4.5 min, 2.1 h."""
    s = float(s)
    if not math.isfinite(s):
        return str(s)
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def format_pow10(v: float | None) -> str:
    """The raw value of a log10 number, exact where 10**v would under- or overflow: 3.162e-120.
    -inf (an exact zero) is "0 (exactly)"; NaN or None "n/a"."""
    if v is None or not math.isfinite(v):
        return "0 (exactly)" if v is not None and v == -math.inf else "n/a"
    e = math.floor(v)
    return f"{10 ** (v - e):.3f}e{e:+d}"


def format_pow10_short(v: float | None) -> str:
    """A log10 number's raw value to 3 significant digits for a headline: 7.15, 0.0123, 3.16e-120
    (scientific only outside [1e-3, 1e4], exact where 10**v would underflow)."""
    if v is None or not math.isfinite(v):
        return format_pow10(v)
    if -3 <= v < 4 and "e" not in (txt := f"{10**v:.3g}"):  # 9999 rounds to 1e+04: written as below
        return txt
    e = math.floor(v)
    m = float(f"{10 ** (v - e):.3g}")
    if m >= 10:  # 9.996 rounds up: carry into the exponent
        m, e = m / 10, e + 1
    return f"{m:.3g}e{e}"


def format_number(v: float, digits: int = 4) -> str:
    """A plain number to ``digits`` significant digits; inf and nan spelled as Python does."""
    return f"{v:.{digits}g}" if math.isfinite(v) else str(v)
