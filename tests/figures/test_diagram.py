"""The Overview's unrolled network, drawn as static SVG (bptt_core.figures.diagram)."""

import re
import xml.etree.ElementTree as ET

import pytest

from bptt_core.figures.diagram import TITLE, unrolled_network_svg

NS = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{NS}text")]


@pytest.mark.parametrize("n", [2, 4, 7])
def test_every_step_has_its_input_state_and_output_and_every_edge_both_arrows(n):
    svg = unrolled_network_svg(n)
    root = ET.fromstring(svg)  # well-formed XML: what the browser parses
    labels = texts(svg)
    steps = [str(i) for i in range(1, n)] + ["n"]
    for row in "xhy":
        assert [t for t in labels if re.fullmatch(f"{row}([1-9]\\d*|n)", t)] == [row + s for s in steps]
    assert len(list(root.iter(f"{NS}circle"))) == n and len(list(root.iter(f"{NS}rect"))) == 2 * n
    lines = list(root.iter(f"{NS}line"))
    blue = [ln for ln in lines if ln.get("marker-end") == "url(#blue)"]
    red = [ln for ln in lines if ln.get("marker-end") == "url(#red)"]
    assert len(blue) == len(red) == n  # h0 -> h1 and every h_{t-1} -> h_t, and the gradient back along each
    for b, r in zip(blue, red, strict=True):  # forward left to right, the gradient right to left
        assert float(b.get("x2")) > float(b.get("x1")) and float(r.get("x2")) < float(r.get("x1"))
    assert labels.count("Whh") == n - 1 and [t for t in labels if t.startswith("J")] == [f"J{s}" for s in steps[1:]]
    assert TITLE in labels and "h0" in labels


def test_lecture_mode_draws_larger_type():
    def sizes(svg):
        return {float(t.get("font-size")) for t in ET.fromstring(svg).iter(f"{NS}text")}

    assert min(sizes(unrolled_network_svg(lecture=True))) > max(sizes(unrolled_network_svg())) - 8
    assert max(sizes(unrolled_network_svg(lecture=True))) > max(sizes(unrolled_network_svg()))


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, "4", True, None])
def test_a_diagram_needs_two_steps_at_least(bad):
    with pytest.raises(ValueError, match="n must be a whole number >= 2"):
        unrolled_network_svg(bad)
