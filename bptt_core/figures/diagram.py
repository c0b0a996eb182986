"""The unrolled network as a static SVG (the Overview's first figure).

A schematic, not data: inputs x_t feed states h_t that feed outputs y_t; the forward pass runs left
to right through W_hh (blue), BPTT's gradient right to left through the step Jacobians J_t (red),
as in Werbos (1990), "Backpropagation through time: what it does and how to do it". Drawn as plain
SVG so that the dashboard's landing page shows it the moment the server answers, without loading a
plotting library in the browser (docs/design.md, "speed").
"""

from __future__ import annotations

from html import escape

BLUE, RED, GREY, INK = "#1f77b4", "#d62728", "#555555", "#1f2430"
TITLE = "The unrolled network: forward pass (blue) left to right, BPTT's gradient (red) right to left"
WIDTH, HEIGHT = 900, 330  # the viewBox: the drawing scales to the column's width
COL0, COL_STEP = 110, 170  # x of the first column and the distance between columns
ROW = {"y": 90, "h": 185, "x": 280}  # y of each row (SVG: downwards)
R, BOX_W, BOX_H = 27, 50, 40  # circle radius, box size


def _label(x: float, y: float, name: str, sub: str, size: int, colour: str = INK, bold: bool = True) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="middle" dominant-baseline="middle" font-size="{size}"'
        f' fill="{colour}"{weight}>{escape(name)}<tspan baseline-shift="sub" font-size="70%">{escape(sub)}</tspan></text>'
    )


def _arrow(x1: float, y1: float, x2: float, y2: float, colour: str, marker: str, width: float = 2) -> str:
    return (
        f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{colour}" stroke-width="{width}"'
        f' marker-end="url(#{marker})"/>'
    )


def _markers() -> str:
    def head(name: str, colour: str) -> str:
        return (
            f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7"'
            f' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )

    return f"<defs>{head('grey', GREY)}{head('blue', BLUE)}{head('red', RED)}</defs>"


def _column(i: int, n: int, size: int) -> list[str]:
    """Step i (0-based) of n: x_t below, h_t in the middle, y_t above, and the arrows between them."""
    cx = COL0 + i * COL_STEP + (COL_STEP * 0.4 if i == n - 1 else 0)  # room for the ellipsis before n
    t = str(i + 1) if i < n - 1 else "n"
    out = [
        f'<circle cx="{cx:.0f}" cy="{ROW["h"]}" r="{R}" fill="rgba(31,119,180,0.12)" stroke="{BLUE}" stroke-width="2"/>',
        _label(cx, ROW["h"], "h", t, size),
    ]
    for row in ("x", "y"):
        out.append(
            f'<rect x="{cx - BOX_W / 2:.0f}" y="{ROW[row] - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" rx="4"'
            f' fill="rgba(0,0,0,0.03)" stroke="#888888"/>'
        )
        out.append(_label(cx, ROW[row], row, t, size))
    out.append(_arrow(cx, ROW["x"] - BOX_H / 2, cx, ROW["h"] + R + 2, GREY, "grey", 1.5))  # x_t -> h_t
    out.append(_arrow(cx, ROW["h"] - R, cx, ROW["y"] + BOX_H / 2 + 2, GREY, "grey", 1.5))  # h_t -> y_t
    return out


def _centre(i: int, n: int) -> float:
    return COL0 + i * COL_STEP + (COL_STEP * 0.4 if i == n - 1 else 0)


def _links(i: int, n: int, size: int) -> list[str]:
    """The recurrent edge into step i: forward (W_hh, blue, above) and the gradient back (J, red, below)."""
    right = _centre(i, n) - R - 2
    left = _centre(i - 1, n) + R + 2 if i else 20
    fwd, back = ROW["h"] - 8, ROW["h"] + 8
    out = [_arrow(left, fwd, right, fwd, BLUE, "blue"), _arrow(right, back, left, back, RED, "red")]
    mid = (left + right) / 2
    if i:
        out.append(_label(mid, fwd - 18, "W", "hh", size - 2, BLUE, bold=False))
        out.append(_label(mid, back + 20, "J", str(i + 1) if i < n - 1 else "n", size - 2, RED, bold=False))
    else:
        out.append(_label(left + 6, fwd - 18, "h", "0", size - 2, bold=False))
    return out


def unrolled_network_svg(n: int = 4, lecture: bool = False) -> str:
    """The diagram with ``n`` >= 2 steps drawn (the last one is step n, after an ellipsis)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be a whole number >= 2, got {n!r}")
    size = 22 if lecture else 17
    width = max(WIDTH, int(_centre(n - 1, n) + 240))
    parts = [_markers()]
    for i in range(n):
        parts += _column(i, n, size) + _links(i, n, size)
    gap = (_centre(n - 2, n) + _centre(n - 1, n)) / 2
    for row in ("x", "y"):  # the steps left out, between the last two columns
        parts.append(f'<text x="{gap:.0f}" y="{ROW[row]}" text-anchor="middle" dominant-baseline="middle"'
                     f' font-size="{size + 8}" fill="{INK}">⋯</text>')  # fmt: skip
    last = _centre(n - 1, n) + BOX_W / 2 + 14
    parts.append(
        f'<text x="{last:.0f}" y="{ROW["y"]}" dominant-baseline="middle" font-size="{size}" fill="{INK}">ℓ'
        f'<tspan baseline-shift="sub" font-size="70%">t</tspan> = ‖ŷ<tspan baseline-shift="sub" font-size="70%">t'
        f'</tspan> − y<tspan baseline-shift="sub" font-size="70%">t</tspan>‖²</text>'
    )
    title = f'<text x="12" y="28" font-size="{size}" fill="{INK}">{escape(TITLE)}</text>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bptt-diagram" viewBox="0 0 {width} {HEIGHT}" width="100%"'
        f' role="img" aria-label="{escape(TITLE)}" font-family="sans-serif">{title}{"".join(parts)}</svg>'
    )
