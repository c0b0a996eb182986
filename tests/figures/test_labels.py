"""Labels and ticks (bptt_core.figures.labels): raw labels exact beyond float's range, short labels, decade
ticks, readable ticks under one decade."""

from __future__ import annotations

import math

import pytest

from bptt_core.figures.labels import decade_ticks, log_ticks, raw_label, short_label


def test_raw_label_is_exact_beyond_float_range():
    assert raw_label(-120 + math.log10(3.162)) == "3.162e-120"
    assert raw_label(400.0) == "1.000e+400"
    assert raw_label(float("-inf")) == "0 (exactly)"


@pytest.mark.parametrize(
    "value,text",
    [(7.151, "7.15"), (0.01234, "0.0123"), (1e-3, "0.001"), (9999.0, "1e4"), (123456.0, "1.23e5"), (9.9999e-5, "1e-4")],
)
def test_short_label_three_digits_scientific_only_outside_1e_3_to_1e4(value, text):
    assert short_label(math.log10(value)) == text
    assert short_label(-120 + math.log10(3.162)) == "3.16e-120"  # beyond float64's range


@pytest.mark.parametrize("lo,hi", [(-6.2, 0.3), (-120.0, 160.0), (0.0, 0.0), (-0.4, 0.4)])
def test_decade_ticks_cover_the_range_with_decade_labels(lo, hi):
    vals, text = decade_ticks(lo, hi)
    assert vals == sorted(vals) and all(float(v).is_integer() for v in vals)
    assert vals[0] <= math.floor(lo) + 1e-9 or vals[0] <= lo
    assert len(vals) <= 10
    for v, t in zip(vals, text, strict=True):
        assert t == ("1" if v == 0 else "10" if v == 1 else f"1e{int(v)}")


@pytest.mark.parametrize("lo,hi", [(0.903, 0.903), (-9.17e-11, 0.0), (0.95, 1.25), (-120.3, -120.1), (2.0, 2.6)])
def test_ticks_under_one_decade_are_readable(lo, hi):
    """A linear orthogonal RNN (every norm sqrt(H)), an IRNN (within 1e-10 of 1): at least one tick, labels
    distinct, each label the raw value at its position."""
    vals, text = log_ticks(lo, hi)
    assert len(vals) >= (1 if hi - lo < 1e-9 else 3) and len(set(text)) == len(text)
    for v, t in zip(vals, text, strict=True):
        assert lo - 1e-9 <= v <= hi + 1e-9 or hi - lo < 1e-9
        mant, _, exp = t.partition("e")
        value_log10 = math.log10(float(mant)) + (int(exp) if exp else 0)
        assert value_log10 == pytest.approx(v, abs=1e-3)
